#!/usr/bin/env bash
# tests/gpu/device_memory.sh LEANTRAIN: the trainer's memory check against the device's free memory, on the CUDA
# emulation (`make cuda-emu` runs this with build/emu/leantrain) playing a GPU of LT_EMU_MEM_MIB MiB, whose
# cudaMalloc fails past it: a batch whose device plan exceeds the free memory (less the 512 MiB kept for the
# kernels' modules) is refused before anything is allocated, naming the batch that fits; --auto_find_batch_size
# trains with it, the same run as that batch given outright, its measured peak the plan; and without the check
# (--memory_limit none) the same batch runs out of a device that lacks the room with an error that says so, and
# --auto_find_batch_size then retries down to the batch that fits.
set -u
LEANTRAIN=${1:?usage: tests/gpu/device_memory.sh LEANTRAIN}
source tests/cli/lib/train_common.bash devmem 20000 # $tmp, fail, $tmp/text.txt
LT=$LEANTRAIN
# a vocabulary of 4096 for logits of 0.25 MiB a sequence: plans 0.3 MiB apart from one batch to the next
M=(--train_file "$tmp/text.txt" --n_layer 1 --n_embd 32 --n_head 2 --n_positions 16 --block_size 16 --vocab_size 4096
   --learning_rate 3e-3 --seed 7 --max_steps 2 --logging_steps 1 --eval_steps 0 --save_strategy no --device cuda)
total() { "$LT" plan "${M[@]}" --per_device_train_batch_size "$1" | sed -nE 's/.* total ([0-9.]+).*/\1/p'; }
t5=$(total 5) t6=$(total 6)
# a device of 512 MiB (the part kept for the kernels' modules) + halfway between batch 5's plan and batch 6's
export LT_EMU_MEM_MIB=$(awk -v a="$t5" -v b="$t6" 'BEGIN { if (!(b > a)) exit 1; printf "%.3f", 512 + (a + b) / 2 }') ||
    { echo "plan totals: batch 5 $t5, batch 6 $t6"; exit 1; }

if "$LT" train "${M[@]}" --per_device_train_batch_size 8 --output_dir "$tmp/refused" > "$tmp/refused.log" 2>&1; then
    echo "batch 8 on a $LT_EMU_MEM_MIB MiB device was not refused"; fail=1
else
    grep -q "batch 8 needs .* MiB are available (the GPU's free [0-9]* MiB of [0-9]* less 512 for kernel modules): --auto_find_batch_size would train with batch 5" "$tmp/refused.log" ||
        { echo "batch 8 refused without the expected reason:"; cat "$tmp/refused.log"; fail=1; }
    [ -e "$tmp/refused" ] && { echo "the refused run left an output folder"; fail=1; }
fi
"$LT" train "${M[@]}" --per_device_train_batch_size 8 --auto_find_batch_size --output_dir "$tmp/auto" > "$tmp/auto.log" 2>&1 ||
    { echo "--auto_find_batch_size failed:"; tail -5 "$tmp/auto.log"; fail=1; }
"$LT" train "${M[@]}" --per_device_train_batch_size 5 --output_dir "$tmp/five" > "$tmp/five.log" 2>&1 ||
    { echo "batch 5 failed:"; tail -5 "$tmp/five.log"; fail=1; }
grep -q "^auto_find_batch_size: batch 5, .*; 8 needs .*, 7 needs .*, 6 needs $t6 MiB" "$tmp/auto.log" &&
    grep -q "^device: cuda" "$tmp/auto.log" && grep -q "measured peak $t5 (+0.0%)" "$tmp/auto.log" &&
    [ "$(notps "$tmp/auto/log.jsonl")" = "$(notps "$tmp/five/log.jsonl")" ] ||
    { echo "--auto_find_batch_size on the device: not the batch-5 run, or its peak not the plan"; cat "$tmp/auto.log"; fail=1; }
# unchecked, on a device without the 512 MiB (the emulation loads no modules): batch 8 runs out of its memory
if LT_EMU_MEM_MIB=$(awk -v m="$LT_EMU_MEM_MIB" 'BEGIN { printf "%.3f", m - 512 }') \
    "$LT" train "${M[@]}" --per_device_train_batch_size 8 --memory_limit none --output_dir "$tmp/oom" > "$tmp/oom.log" 2>&1; then
    echo "batch 8 unchecked did not run out of the emulated device's memory"; fail=1
else
    grep -q "out of memory" "$tmp/oom.log" && grep -q "needs more memory than it found.*--auto_find_batch_size" "$tmp/oom.log" &&
        ! grep -q "(null)" "$tmp/oom.log" ||
        { echo "out of device memory without saying so (or what to do):"; cat "$tmp/oom.log"; fail=1; }
    [ -e "$tmp/oom/checkpoint-1" ] && { echo "the run that ran out of memory left a checkpoint"; fail=1; }
fi
# --auto_find_batch_size on that device, unchecked (the Trainer's way) or with a budget the device lacks (a plan
# that was wrong): 8, 7 and 6 run out of the emulated memory, each attempt's allocations freed for the next, and
# batch 5 trains, the same run as batch 5 given outright, its measured peak the plan
for lim in none 1GB; do
    LT_EMU_MEM_MIB=$(awk -v m="$LT_EMU_MEM_MIB" 'BEGIN { printf "%.3f", m - 512 }') \
        "$LT" train "${M[@]}" --per_device_train_batch_size 8 --memory_limit $lim --auto_find_batch_size \
        --output_dir "$tmp/retry-$lim" > "$tmp/retry-$lim.log" 2>&1 || { echo "retries (--memory_limit $lim) failed"; fail=1; }
    grep -q "batch 8 ran out of memory (.*out of memory.*retries with batch 7" "$tmp/retry-$lim.log" &&
        grep -q "batch 7 ran out of memory .* retries with batch 6" "$tmp/retry-$lim.log" &&
        grep -q "batch 6 ran out of memory .* retries with batch 5" "$tmp/retry-$lim.log" &&
        [ "$(grep -c "ran out of memory (" "$tmp/retry-$lim.log")" = 3 ] &&
        grep -q "measured peak $t5 (+0.0%)" "$tmp/retry-$lim.log" &&
        [ "$(notps "$tmp/retry-$lim/log.jsonl")" = "$(notps "$tmp/five/log.jsonl")" ] ||
        { echo "--auto_find_batch_size's retries on the device (--memory_limit $lim): not 8, 7, 6, then the batch-5 run"
          cat "$tmp/retry-$lim.log"; fail=1; }
done
[ $fail -eq 0 ] && echo "device_memory: batch 8 refused on a $LT_EMU_MEM_MIB MiB device; --auto_find_batch_size trained batch 5 at its plan, also by retries" && rm -rf "$tmp"
exit $fail
