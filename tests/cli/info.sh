#!/usr/bin/env bash
# `leantrain info`: the listing of a golden file, metadata truncation, and the
# exit status and stderr message for unreadable files.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
bin="$BUILD/leantrain"
tmp="${LT_TEST_TMP:-$BUILD/tmp}"
mkdir -p "$tmp"
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }

g=tests/data/golden/adamw_torch.safetensors
out=$("$bin" info "$g" 2>"$tmp/info.err"); rc=$?
[ $rc -eq 0 ] && ok "exit 0 on a valid file" || bad "exit $rc on a valid file: $(cat "$tmp/info.err")"
head -n1 <<<"$out" | grep -qx "$g" && ok "file name first" || bad "first line: $(head -n1 <<<"$out")"
grep -Eq '^ +format += optim-trace-1$' <<<"$out" && ok "metadata line" || bad "no 'format = optim-trace-1' line"
grep -Eq '^ +w\.init +F32 +\[64, 96\] +24576$' <<<"$out" && ok "tensor line" || bad "no w.init line"
# Columns line up: every tensor line has its dtype at the same position.
cols=$(grep -E '^    [^ ].* (F32|BF16|I64) ' <<<"$out" | awk '{print index($0, " " $2 " ")}' | sort -u | wc -l)
[ "$cols" -eq 1 ] && ok "aligned columns" || bad "dtype column at $cols positions"

# A 300-character metadata value is cut at 200 characters plus "...".
long=$(printf 'x%.0s' $(seq 300))
hdr="{\"__metadata__\":{\"long\":\"$long\"}}"
n=${#hdr}
f="$tmp/info_long.safetensors"
printf "\\x$(printf %02x $((n & 255)))\\x$(printf %02x $((n >> 8)))\\x00\\x00\\x00\\x00\\x00\\x00%s" "$hdr" >"$f"
out=$("$bin" info "$f" 2>&1); rc=$?
[ $rc -eq 0 ] && ok "long metadata file read" || bad "exit $rc: $out"
grep -Eq "^ +long = x{200}\.\.\.$" <<<"$out" && ok "value truncated" || bad "value not cut at 200: $out"

# An invalid file: exit 1, the reason on stderr naming the file, valid files still listed.
c=fuzz/corpus/bad_gap.safetensors
out=$("$bin" info "$g" "$c" 2>"$tmp/info.err"); rc=$?
[ $rc -eq 1 ] && ok "exit 1 with an invalid file" || bad "exit $rc with an invalid file"
grep -q "$c: gap in the data section" "$tmp/info.err" && ok "error on stderr" || bad "stderr: $(cat "$tmp/info.err")"
grep -q "w.init" <<<"$out" && ok "valid file still listed" || bad "valid file not listed"
"$bin" info "$tmp/does-not-exist.safetensors" >/dev/null 2>"$tmp/info.err"; rc=$?
[ $rc -eq 1 ] && grep -q "does-not-exist.safetensors: cannot open" "$tmp/info.err" \
    && ok "missing file" || bad "missing file: exit $rc, $(cat "$tmp/info.err")"
"$bin" info >/dev/null 2>&1; rc=$?
[ $rc -ne 0 ] && ok "no file is a usage error" || bad "exit 0 without a file"
exit $fail
