#!/usr/bin/env bash
# bench/gpu_profile.sh [--out DIR]: where the GPU time goes, for the steps that miss their goals (a developer's
# tool, beside scripts/gpu-check; about 3 minutes on an H200). Builds as gpu-check does (the .deb folder unpacked
# when the machine lacks cJSON/OpenBLAS/PCRE2), checks the low-bit kernels against the CPU (gpu_compare), times
# the low-bit steps and the Adafactor step with and without cp.async staging, then runs Nsight Compute (ncu, clocks left
# alone) over: one 8-bit AdamW step (speed of light, warp stalls, instruction mix), one Adafactor step (each
# kernel's duration), and one GPT-2 124M training step at T 1024, batch 4, for the fp32 set and the 8-bit +
# checkpointing + bf16 set (each kernel name's total time, largest first).
# Writes DIR/profile.log (everything) and DIR/*.txt (one per ncu run); prints the short tables last.
set -u
cd "$(dirname "$0")/.."
OUT=.
[ "${1:-}" = --out ] && OUT=${2:?--out needs a folder}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
LOG="$OUT/profile.log"
: >"$LOG"
export PATH="$PATH:/usr/local/cuda/bin"
B=build-gpu
LT=$B/leantrain
T=$(mktemp -d /tmp/gpu-profile.XXXXXX)
say() { echo "$*" | tee -a "$LOG"; }
run() { # run LIMIT CMD...: output to the log
    local lim=$1
    shift
    say "== $*"
    timeout --kill-after=5 "$lim" "$@" >>"$LOG" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || say "   exit $rc"
    return $rc
}

DEPS=""
if [ ! -f /usr/include/cjson/cJSON.h ] || [ ! -f /usr/include/pcre2.h ]; then
    DEPS=$T/deps
    mkdir -p "$DEPS"
    for f in .deb/*.deb; do dpkg -x "$f" "$DEPS"; done
fi
run 200 make -j"$(nproc)" BUILD=$B ${DEPS:+LT_DEPS_ROOT=$DEPS} all || { tail -20 "$LOG"; exit 1; }
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)

run 60 $B/tests/gpu/gpu_compare --only 8bit && say "   gpu_compare 8bit: pass"
run 60 $B/tests/gpu/gpu_compare --only 4bit && say "   gpu_compare 4bit: pass"

: >"$T/bench"
for o in adamw_bnb_8bit lion_8bit adamw_torch_8bit adamw_torch_4bit adafactor adafactor/nostage; do
    [ $o = adafactor/nostage ] && pipe=0 || pipe=1
    LT_ADAFACTOR_PIPE=$pipe timeout 60 $LT bench optim --device cuda --params 256 --steps 20 --optim ${o%/*} \
        2>>"$LOG" | awk -v o=$o '$1 == substr(o, 1, length($1)) { print o, $2, $4 }' >>"$T/bench"
done
cat "$T/bench" >>"$LOG"

if [ -n "$NCU" ]; then
    N=("$NCU" --clock-control none)
    # the 8-bit AdamW kernel in detail (its first launch: a step of 262M parameters)
    run 90 "${N[@]}" -k regex:q_kernel -c 1 --section SpeedOfLight --section WarpStateStats --section Occupancy \
        --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section InstructionStats \
        --section LaunchStats --section SchedulerStats -o "$T/q8" $LT bench optim --device cuda --params 256 --steps 1 \
        --optim adamw_bnb_8bit
    "$NCU" -i "$T/q8.ncu-rep" --page details >"$OUT/ncu_q8.txt" 2>&1
    # Adafactor: every kernel of the first step, durations
    run 60 "${N[@]}" -k regex:af_ -c 5 --section SpeedOfLight -o "$T/af" $LT bench optim --device cuda --params 256 \
        --steps 1 --optim adafactor
    "$NCU" -i "$T/af.ncu-rep" --page details >"$OUT/ncu_af.txt" 2>&1
    # one training step: each kernel name's total
    cc -std=c11 -O2 -o "$T/gen_corpus" scripts/gen_corpus.c && "$T/gen_corpus" "$T/text.txt" 400000 >/dev/null
    for set in a b; do
        case $set in
        a) cfg=(--optim adamw_torch) ;;
        b) cfg=(--optim adamw_bnb_8bit --gradient_checkpointing --bf16) ;;
        esac
        run 90 "${N[@]}" --metrics gpu__time_duration.sum -c 3000 --csv --page raw -o "$T/tr$set" $LT train \
            --train_file "$T/text.txt" --model gpt2 --block_size 1024 --per_device_train_batch_size 4 --max_steps 1 \
            --eval_steps 0 --save_strategy no --learning_rate 1e-4 --device cuda --output_dir "$T/o$set" "${cfg[@]}"
        "$NCU" -i "$T/tr$set.ncu-rep" --csv --page raw --print-units base >"$T/tr$set.csv" 2>>"$LOG"
        python3 - "$T/tr$set.csv" "$set" >"$OUT/train_$set.txt" 2>>"$LOG" <<'EOF'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1])))
def num(r):
    try: return float(r.get("gpu__time_duration.sum", "").replace(",", ""))
    except ValueError: return None
rows = [r for r in rows if num(r) is not None]
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    k = r["Kernel Name"][:90]
    tot[k] += num(r) / 1e6   # ns -> ms
    cnt[k] += 1
allms = sum(tot.values())
print(f"set {sys.argv[2]}: {len(rows)} kernels, {allms:.2f} ms of kernel time (init and the step)")
for k, v in sorted(tot.items(), key=lambda x: -x[1])[:40]:
    print(f"{v:9.3f} ms {100 * v / allms:5.1f}% x{cnt[k]:<5d} {k}")
EOF
    done
else
    say "ncu: not found"
fi
{
    echo "---- bench (ms per step, bw_ratio)"
    cat "$T/bench"
    echo "---- ncu: 8-bit AdamW kernel"
    grep -E "Duration|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Executed Ipc A|Issue Slots Busy|Achieved Occupancy|Registers Per|No Eligible|Stall|Warp Cycles Per Issued|L1/TEX Hit|L2 Hit|Bank Conflicts|Shared" "$OUT/ncu_q8.txt" 2>/dev/null | head -40
    echo "---- ncu: Adafactor kernels"
    grep -E "^  [a-z_<>0-9, ]+\(|Duration|DRAM Throughput" "$OUT/ncu_af.txt" 2>/dev/null | head -30
    for set in a b; do
        echo "---- ncu: training step, set $set"
        head -25 "$OUT/train_$set.txt" 2>/dev/null
    done
} | tee -a "$LOG"
rm -rf "$T"
