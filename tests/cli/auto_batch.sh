#!/usr/bin/env bash
# leantrain train --auto_find_batch_size and --memory_limit: a run whose memory plan does not fit the limit stops
# before it allocates, naming the batch that would fit; with --auto_find_batch_size it trains with the first of the
# Trainer's sizes (batch x 0.9, truncated: 8, 7, 6, 5, ...) whose plan fits, and that run is the run of that
# batch size given outright, bit for bit; trainer_state.json records the batch, and a resume with the flag
# continues with the checkpoint's batch (the Trainer's rule) whatever the new limit, equal to the uninterrupted
# run; `leantrain plan --memory` names the same batches (--memory auto: from the trainer's figure of this
# machine); an out-of-memory error after the plan is retried with the next size (the Trainer's way, also with
# --memory_limit none), unless the run has written a checkpoint; bad values fail with one line.
source tests/cli/lib/train_common.bash auto_batch 30000
M=(--train_file "$tmp/text.txt" --n_layer 1 --n_embd 32 --n_head 2 --n_positions 32 --block_size 32
   --learning_rate 3e-3 --seed 7 --threads 2 --max_steps 6 --logging_steps 1 --eval_steps 3 --eval_max_batches 2
   --device cpu)
run() { # name, args...: a run into $tmp/<name>, its output in $tmp/<name>.log
    local name=$1; shift
    "$LT" train "${M[@]}" "$@" --output_dir "$tmp/$name" > "$tmp/$name.log" 2>&1 ||
        { echo "run $name failed: $*"; cat "$tmp/$name.log"; fail=1; }
}
# the planned totals (bytes) of batches 5 and 6, and a limit halfway between them: 5 fits, 6 does not
total() { "$LT" plan "${M[@]}" --per_device_train_batch_size "$1" | sed -nE 's/.* total ([0-9.]+).*/\1/p'; }
t5=$(total 5) t6=$(total 6)
limit=$(awk -v a="$t5" -v b="$t6" 'BEGIN { printf "%.3fMiB", (a + b) / 2 }')
awk -v a="$t5" -v b="$t6" 'BEGIN { exit !(a > 0 && b > a) }' || { echo "plan totals: batch 5 $t5, batch 6 $t6"; exit 1; }

# without the flag: refused before anything is written, with the batch that fits
bad "--auto_find_batch_size would train with batch 5" "${M[@]}" --per_device_train_batch_size 8 --memory_limit "$limit"
# with it: batch 5 (8, 7 and 6 do not fit), the same run as batch 5 given outright
run auto --per_device_train_batch_size 8 --memory_limit "$limit" --auto_find_batch_size
run five --per_device_train_batch_size 5
grep -q "^auto_find_batch_size: batch 5, [0-9.]* MiB planned of [0-9.]* MiB available (--memory_limit); 8 needs .*, 7 needs .*, 6 needs $t6 MiB" "$tmp/auto.log" &&
    grep -q "batch 5 x 1 accumulation" "$tmp/auto.log" &&
    grep -q '"train_batch_size":[[:space:]]*5,' "$tmp/auto/checkpoint-6/trainer_state.json" &&
    [ "$(notps "$tmp/auto/log.jsonl")" = "$(notps "$tmp/five/log.jsonl")" ] ||
    { echo "auto batch: not batch 5, or not the batch-5 run"; cat "$tmp/auto.log"; fail=1; }
# the limit is a budget, not a target: a batch that fits is kept (here under this machine's available memory)
run roomy --per_device_train_batch_size 5 --auto_find_batch_size
grep -q "^auto_find_batch_size: batch 5, .* MiB available (" "$tmp/roomy.log" && ! grep -q "needs" "$tmp/roomy.log" ||
    { echo "auto batch with room: expected batch 5 kept"; cat "$tmp/roomy.log"; fail=1; }
# --memory_limit none: no check (the batch-8 run that was refused above)
run none --per_device_train_batch_size 8 --memory_limit none --max_steps 1
grep -q "batch 8 x 1 accumulation" "$tmp/none.log" || { echo "--memory_limit none: batch 8 expected"; fail=1; }

# resume: stopped after step 3 under the limit (batch 5), resumed with a roomy limit: still batch 5, the same run
LT_TEST_SIGNAL=TERM@3 "$LT" train "${M[@]}" --per_device_train_batch_size 8 --memory_limit "$limit" \
    --auto_find_batch_size --output_dir "$tmp/res" > "$tmp/res1.log" 2>&1
rc=$?
[ $rc -eq 143 ] || { echo "stop at step 3: exit $rc"; cat "$tmp/res1.log"; fail=1; }
"$LT" train "${M[@]}" --per_device_train_batch_size 8 --memory_limit 1GB --auto_find_batch_size \
    --resume_from_checkpoint latest --output_dir "$tmp/res" > "$tmp/res2.log" 2>&1 || { echo "resume failed"; cat "$tmp/res2.log"; fail=1; }
grep -q "^auto_find_batch_size: batch 5, .*; from the checkpoint's batch 5" "$tmp/res2.log" &&
    [ "$(notps "$tmp/res/log.jsonl")" = "$(notps "$tmp/five/log.jsonl")" ] &&
    cmp -s "$tmp/res/model.safetensors" "$tmp/five/model.safetensors" ||
    { echo "auto batch resume: not the uninterrupted batch-5 run"; cat "$tmp/res2.log"; fail=1; }

# leantrain plan --memory: the same batches
p=$("$LT" plan "${M[@]}" --per_device_train_batch_size 8 --memory "$limit")
echo "$p" | grep -q "batch 8 does not fit; the largest batch that fits: 5; --auto_find_batch_size would train with batch 5" ||
    { echo "plan --memory: $p"; fail=1; }

# --memory auto: this machine's figure, the one train's --memory_limit auto uses (the same source named)
p=$("$LT" plan "${M[@]}" --memory auto)
src=$(grep -o 'available ([^)]*)' "$tmp/roomy.log" | sed 's/available //')
echo "$p" | grep -qE "^in [0-9.]+ MiB \((MemAvailable|the cgroup's [a-z._]+)\): batch 8 fits; the largest batch that fits: [1-9]" &&
    echo "$p" | grep -qF "$src" || { echo "plan --memory auto ($src): $p"; fail=1; }

# nothing fits, bad values
bad "--auto_find_batch_size: not even batch 1 fits" "${M[@]}" --auto_find_batch_size --memory_limit 1MiB
bad "not even batch 1 fits" "${M[@]}" --memory_limit 1MiB
bad "--memory_limit must be auto, none or a size" "${M[@]}" --memory_limit lots

# out of memory after the plan (LT_TEST_OOM=5@K: batches above 5 fail at step K, as an allocation there would):
# the Trainer's retries, each attempt's run torn down and the next size started afresh (at step 4, after steps
# that evaluated, logged and went into a second epoch of 16 blocks); unchecked (--memory_limit none, the Trainer's
# own way) and after a plan that was wrong (a budget the machine lacks) alike, each the batch-5 run given outright
S=(--max_train_samples 16 --eval_on_start)
run fives --per_device_train_batch_size 5 "${S[@]}"
for lim in none 1GB; do
    k=1; [ $lim = none ] && k=4
    LT_TEST_OOM=5@$k run "oom-$lim" --per_device_train_batch_size 8 --memory_limit $lim --auto_find_batch_size "${S[@]}"
    grep -q "batch 8 ran out of memory (step $k: out of memory (LT_TEST_OOM=5@$k.*retries with batch 7" "$tmp/oom-$lim.log" &&
        grep -q "batch 7 ran out of memory .* retries with batch 6" "$tmp/oom-$lim.log" &&
        grep -q "batch 6 ran out of memory .* retries with batch 5" "$tmp/oom-$lim.log" &&
        [ "$(grep -c "ran out of memory (" "$tmp/oom-$lim.log")" = 3 ] &&
        grep -q "^auto_find_batch_size: batch 5, .*batch 6 ran out of memory" "$tmp/oom-$lim.log" &&
        grep -q '"train_batch_size":[[:space:]]*5,' "$tmp/oom-$lim/checkpoint-6/trainer_state.json" &&
        [ "$(notps "$tmp/oom-$lim/log.jsonl")" = "$(notps "$tmp/fives/log.jsonl")" ] &&
        cmp -s "$tmp/oom-$lim/model.safetensors" "$tmp/fives/model.safetensors" ||
        { echo "out-of-memory retries (--memory_limit $lim): not 8, 7, 6, then the batch-5 run"; cat "$tmp/oom-$lim.log"; fail=1; }
done
# without the flag the error says what to do; with it, a run that has written a checkpoint is not restarted over
# it (its resume retries from the checkpoint's batch), and batch 1 running out ends the retries
LT_TEST_OOM=5 bad "--auto_find_batch_size trains with a batch that fits" "${M[@]}" --per_device_train_batch_size 8 \
    --memory_limit none
LT_TEST_OOM=5@5 "$LT" train "${M[@]}" --per_device_train_batch_size 8 --memory_limit none --auto_find_batch_size \
    --save_steps 3 --output_dir "$tmp/late" > "$tmp/late.log" 2>&1 && { echo "out of memory at step 5: exit 0"; fail=1; }
grep -q "step 5: out of memory" "$tmp/late.log" && ! grep -q "retries with" "$tmp/late.log" &&
    grep -q "does not restart a run that has written checkpoints: run the same command with --resume_from_checkpoint latest" "$tmp/late.log" ||
    { echo "out of memory after a checkpoint: expected no retry and the resume hint"; cat "$tmp/late.log"; fail=1; }
LT_TEST_OOM=5@5 run late --per_device_train_batch_size 8 --memory_limit none --auto_find_batch_size --save_steps 3 \
    --resume_from_checkpoint latest
grep -q "resuming from $tmp/late/checkpoint-3" "$tmp/late.log" && grep -q "batch 8 ran out of memory (step 5" "$tmp/late.log" &&
    grep -q "^auto_find_batch_size: batch 5, .*batch 6 ran out of memory" "$tmp/late.log" &&
    grep -q '"train_batch_size":[[:space:]]*5,' "$tmp/late/checkpoint-6/trainer_state.json" &&
    [ "$(sed -n 's/.*"step":[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/late/log.jsonl" | tr '\n' ' ')" = "1 2 3 3 4 5 6 6 " ] ||
    { echo "resume after a late out of memory: expected steps 4-6 at batch 5, each logged once"; cat "$tmp/late.log"; fail=1; }
LT_TEST_OOM=0 bad "not even batch 1 fits" "${M[@]}" --per_device_train_batch_size 3 --memory_limit none --auto_find_batch_size
[ $fail -eq 0 ] && rm -rf "$tmp"
exit $fail
