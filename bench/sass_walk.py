#!/usr/bin/env python3
"""Static instruction count of a kernel's common path, from nvdisasm's SASS.

The kernel source marks places with LT_SASS_MARK(n) (a NANOSLEEP n, compiled
in only with -DLT_SASS_MARKS; lowbit.cuh). From mark START this walks the
instructions in program order until mark STOP and counts them, deciding each
branch as the common case runs it:
  - a conditional branch whose target (or fall-through) reaches one of the
    PREFER marks first is taken (or not): the common case of a runtime choice
    the source marks (the warp's hot step, the branch-free code search); a
    PREFER entry -n names a mark to avoid: a branch whose fall-through
    reaches it first is taken (the voted step's rare retry);
  - a conditional branch that skips at most 8 instructions holding a CALL
    jumps over a slow path (IEEE division and square root's rare operands);
  - a backward branch is taken once (the loop back to the top), then not;
  - otherwise a conditional branch falls through (BRA.DIV too).
usage: sass_walk.py FILE.sass KERNEL_SUBSTRING START STOP [PREFER,...]
prints: "<count> <marks passed>" and the opcodes by frequency."""
import collections
import re
import sys


def main():
    path, kern, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    marks_arg = [int(x) for x in sys.argv[5].split(",")] if len(sys.argv) > 5 else []
    prefer = [x for x in marks_arg if x >= 0]
    avoid = [-x for x in marks_arg if x < 0]
    ins, labels, on = [], {}, False
    for line in open(path):
        m = re.match(r"\.text\.(\S+):", line)
        if m:
            on = kern in m.group(1)
            continue
        if not on:
            continue
        m = re.match(r"(\.L_x_\d+):", line.strip())
        if m:
            labels[m.group(1)] = len(ins)
            continue
        m = re.search(r"/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;", line)
        if m:
            ins.append(m.group(1))
    if not ins:
        sys.exit(f"sass_walk: no kernel matching {kern} in {path}")

    def mark(i):
        m = re.match(r"NANOSLEEP 0x([0-9a-f]+)$", ins[i])
        return int(m.group(1), 16) if m else None

    def first_mark(a):
        for j in range(a, min(a + 64, len(ins))):
            if mark(j) is not None:
                return mark(j)
        return None

    def is_call(x):
        p = x.split()
        return p[0].startswith("CALL") or (len(p) > 1 and p[1].startswith("CALL"))

    starts = [i for i in range(len(ins)) if mark(i) == start]
    if not starts:
        sys.exit(f"sass_walk: no mark {start} in {kern} (built without -DLT_SASS_MARKS?)")
    pc, n, marks, ops, seen, steps = starts[0], 0, [], collections.Counter(), set(), 0
    while True:
        steps += 1
        if steps > 200000:
            sys.exit("sass_walk: no end (a loop the rules do not leave)")
        s, mk = ins[pc], mark(pc)
        if mk is not None:
            marks.append(mk)
            if mk == stop:
                break
            pc += 1
            continue
        n += 1
        parts = s.split()
        pred = parts[0].startswith("@")
        op = parts[1] if pred else parts[0]
        ops[op.split(".")[0]] += 1
        if op.startswith("EXIT") and not pred:
            sys.exit(f"sass_walk: reached EXIT before mark {stop} (marks {marks})")
        if op.startswith("BRA") and not op.startswith("BRA.DIV"):
            t = labels[re.search(r"`\((\.L_x_\d+)\)", s).group(1)]
            if not pred:
                pc = t
                continue
            if first_mark(t) in prefer:
                pc = t
                continue
            if first_mark(pc + 1) in prefer:
                pc += 1
                continue
            if avoid and first_mark(pc + 1) in avoid:
                pc = t
                continue
            if t <= pc:
                if pc not in seen:
                    seen.add(pc)
                    pc = t
                    continue
            elif t - pc - 1 <= 8 and any(is_call(x) for x in ins[pc + 1:t]):
                pc = t
                continue
        pc += 1
    print(n, " ".join(str(m) for m in marks))
    print(" ".join(f"{o}:{c}" for o, c in ops.most_common(30)))


if __name__ == "__main__":
    main()
