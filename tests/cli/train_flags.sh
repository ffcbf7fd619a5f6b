#!/usr/bin/env bash
# leantrain train: the Trainer's when-flags, checked against the rules transformers 5 states for them and against
# each other: *_steps given as a ratio in (0, 1) of the run's steps is ceil(total x ratio) steps (the same run as
# that whole number); logging_first_step adds step 1; the "epoch" strategies act at each epoch's last step (the
# same as "steps" every steps-per-epoch); eval_on_start evaluates the model before step 1 (the loss an
# evaluation-only run gives for the same initial model); --do_eval evaluates after the last step and writes
# eval_results.json, whose loss and accuracy an evaluation-only run of the last checkpoint reproduces bit for bit;
# the old and run_clm names (--evaluation_strategy, --tokenizer_name) are the same flags; the best model (by loss,
# or by accuracy, greater-better by default) is tracked, kept by
# save_total_limit, saved by --save_strategy best and loaded by --load_best_model_at_end; output_dir itself holds
# the final model (the best one, once loaded) unless --save_strategy no; flags without an effect here
# (--gradient_checkpointing_kwargs' use_reentrant, --save_safetensors true, --disable_tqdm's bar) are taken; bad
# values fail with one line; training_args.json records the flags and, given back, makes the same run.
source tests/cli/lib/train_common.bash train_flags 30000
# 30000 bytes in run_clm's layout: 894 training blocks of 32 tokens (31 predictions each) and 45 validation
# blocks; batch 8 x accumulation 2: 56 optimizer steps per epoch, the Trainer's (894 / 8: 111 whole micro-batches
# and one of 6 blocks, 112 in pairs)
M=(--train_file "$tmp/text.txt" --n_layer 1 --n_embd 32 --n_head 2 --n_positions 32 --block_size 32
   --per_device_train_batch_size 8 --gradient_accumulation_steps 2 --learning_rate 3e-3 --seed 7 --threads 2
   --eval_max_batches 2)
steps_of() { grep -F "\"$2\"" "$1" | sed -E 's/.*"step":([0-9]+).*/\1/' | tr '\n' ' '; } # log.jsonl, key
run() { # name, args...: a run into $tmp/<name>, its output in $tmp/<name>.log
    local name=$1; shift
    "$LT" train "${M[@]}" "$@" --output_dir "$tmp/$name" > "$tmp/$name.log" 2>&1 ||
        { echo "run $name failed: $*"; cat "$tmp/$name.log"; fail=1; }
}

# ratios: 0.25 of 10 steps is 3 (ceil 2.5) for warmup, logging, evaluation and checkpoints: the same run as 3
run ratio --max_steps 10 --warmup_steps 0.25 --logging_steps 0.25 --eval_steps 0.25 --save_steps 0.25 --logging_first_step
run whole --max_steps 10 --warmup_steps 3 --logging_steps 3 --eval_steps 3 --save_steps 3 --logging_first_step
[ "$(notps "$tmp/ratio/log.jsonl")" = "$(notps "$tmp/whole/log.jsonl")" ] && grep -q "10 steps (3 warmup)" "$tmp/ratio.log" &&
    [ "$(steps_of "$tmp/ratio/log.jsonl" loss)" = "1 3 6 9 10 " ] && [ "$(steps_of "$tmp/ratio/log.jsonl" eval_loss)" = "3 6 9 10 " ] &&
    [ "$(ls "$tmp/ratio" | grep checkpoint- | sort -t- -k2 -n | tr '\n' ' ')" = "checkpoint-3 checkpoint-6 checkpoint-9 checkpoint-10 " ] ||
    { echo "ratio steps: not the run of 3 steps, or not logged at 1 3 6 9 10"; cat "$tmp/ratio/log.jsonl"; ls "$tmp/ratio"; fail=1; }

# epoch strategies over 2 epochs of 56 steps: at 56 and 112, the same as steps every 56
run epoch --num_train_epochs 2 --logging_strategy epoch --eval_strategy epoch --save_strategy epoch
run every56 --num_train_epochs 2 --logging_steps 56 --eval_steps 56 --save_steps 56
grep -q "112 steps" "$tmp/epoch.log" && [ "$(notps "$tmp/epoch/log.jsonl")" = "$(notps "$tmp/every56/log.jsonl")" ] &&
    [ "$(steps_of "$tmp/epoch/log.jsonl" loss)" = "56 112 " ] && [ "$(steps_of "$tmp/epoch/log.jsonl" eval_loss)" = "56 112 " ] &&
    [ "$(ls "$tmp/epoch" | grep checkpoint- | sort | tr '\n' ' ')" = "checkpoint-112 checkpoint-56 " ] ||
    { echo "epoch strategies: not at each epoch's last step"; grep '^data' "$tmp/epoch.log"; cat "$tmp/epoch/log.jsonl"; fail=1; }

# no: nothing logged, evaluated or saved during the run; --do_eval still evaluates after the last step
run quiet --max_steps 4 --logging_strategy no --evaluation_strategy no --save_strategy no --do_eval
[ "$(steps_of "$tmp/quiet/log.jsonl" loss)" = "" ] && [ "$(steps_of "$tmp/quiet/log.jsonl" eval_loss)" = "4 " ] &&
    ! ls "$tmp/quiet" | grep -q checkpoint- && [ -s "$tmp/quiet/eval_results.json" ] && [ ! -e "$tmp/quiet/model.safetensors" ] ||
    { echo "strategies no + --do_eval: $(ls "$tmp/quiet")"; cat "$tmp/quiet/log.jsonl"; fail=1; }

# eval_on_start: the initial model's loss, which an evaluation-only run of the same initial model (--seed) gives
run start --max_steps 2 --eval_on_start --logging_steps 1 --eval_steps 0 --save_strategy no
run evalonly0 --do_train false --do_eval
first=$(head -1 "$tmp/start/log.jsonl" | sed -nE 's/.*"eval_loss":([^,]*),.*"step":0}$/\1/p')
only=$(sed -nE 's/.*"eval_loss":[[:space:]]*([^,]*),.*/\1/p' "$tmp/evalonly0/eval_results.json")
[ -n "$first" ] && [ "$first" = "$only" ] && [ ! -e "$tmp/evalonly0/log.jsonl" ] ||
    { echo "eval_on_start ($first) against the evaluation-only run of the initial model ($only)"; fail=1; }

# --do_eval: eval_results.json holds the last evaluation (the one of the last step), and evaluating the last
# checkpoint alone gives the same loss to the last bit; the evaluation-only run leaves the run's files alone
run final --max_steps 6 --logging_steps 3 --eval_steps 4 --save_steps 3 --do_eval
last=$(grep eval_loss "$tmp/final/log.jsonl" | tail -1 | sed -nE 's/.*"eval_loss":([^,]*),.*"step":6}$/\1/p')
res=$(sed -nE 's/.*"eval_loss":[[:space:]]*([^,]*),.*/\1/p' "$tmp/final/eval_results.json")
cp "$tmp/final/log.jsonl" "$tmp/final.jsonl"
"$LT" train "${M[@]}" --model_name_or_path "$tmp/final/checkpoint-6" --do_train false --do_eval \
    --output_dir "$tmp/final" > "$tmp/final-eval.log" 2>&1 || { echo "evaluation-only run failed"; cat "$tmp/final-eval.log"; fail=1; }
again=$(sed -nE 's/.*"eval_loss":[[:space:]]*([^,]*),.*/\1/p' "$tmp/final/eval_results.json")
[ "$(steps_of "$tmp/final/log.jsonl" eval_loss)" = "4 6 " ] && [ -n "$last" ] && [ "$last" = "$res" ] && [ "$res" = "$again" ] &&
    cmp -s "$tmp/final/log.jsonl" "$tmp/final.jsonl" && grep -q "without training (--do_train false)" "$tmp/final-eval.log" &&
    cmp -s "$tmp/final/model.safetensors" "$tmp/final/checkpoint-6/model.safetensors" && [ -s "$tmp/final/config.json" ] ||
    { echo "--do_eval: log $last, eval_results.json $res, evaluation-only $again"; cat "$tmp/final/log.jsonl"; fail=1; }
# run_clm's eval_accuracy (the fraction of positions whose top-1 prediction is the next token): logged with each
# evaluation, in eval_results.json beside the evaluation's speed, and the evaluation-only run's to the last bit
acc_log=$(grep eval_loss "$tmp/final.jsonl" | tail -1 | sed -nE 's/.*"eval_accuracy":([^,]*),.*"step":6}$/\1/p')
acc_again=$(sed -nE 's/.*"eval_accuracy":[[:space:]]*([^,]*),.*/\1/p' "$tmp/final/eval_results.json")
[ -n "$acc_log" ] && [ "$acc_log" = "$acc_again" ] && awk -v a="$acc_log" 'BEGIN { exit !(a > 0 && a < 1) }' &&
    grep -q '"eval_runtime":' "$tmp/final/eval_results.json" && grep -q '"eval_samples_per_second":' "$tmp/final/eval_results.json" &&
    grep -q "step 6/6  eval_loss [0-9.]*  eval_perplexity [0-9.]*  eval_accuracy 0\.[0-9]*$" "$tmp/final.log" ||
    { echo "eval_accuracy: log '$acc_log', evaluation-only '$acc_again'"; cat "$tmp/final/eval_results.json"; fail=1; }

# --prediction_loss_only: the Trainer's evaluation without predictions, so no eval_accuracy (the same loss)
run plo --max_steps 6 --logging_steps 3 --eval_steps 4 --save_steps 3 --do_eval --prediction_loss_only
[ "$(grep -c eval_loss "$tmp/plo/log.jsonl")" = 2 ] && ! grep -q eval_accuracy "$tmp/plo/log.jsonl" "$tmp/plo/eval_results.json" &&
    [ "$(notps "$tmp/final.jsonl" | sed 's/,"eval_accuracy":[^,]*//')" = "$(notps "$tmp/plo/log.jsonl")" ] ||
    { echo "--prediction_loss_only: an accuracy, or another loss"; cat "$tmp/plo/log.jsonl"; fail=1; }

# --metric_for_best_model accuracy: greater is better unless told (the Trainer's default for a name not ending in
# loss), so --save_strategy best saves exactly at each evaluation whose accuracy beats every earlier one
run bestacc --max_steps 10 --logging_steps 5 --eval_steps 1 --save_strategy best --metric_for_best_model accuracy
records=$(grep eval_accuracy "$tmp/bestacc/log.jsonl" | sed -E 's/.*"eval_accuracy":([^,]*),.*"step":([0-9]+)}$/\2 \1/' |
    awk 'NR == 1 || $2 > best { best = $2; printf "checkpoint-%s ", $1 }')
[ -n "$records" ] && [ "$(ls "$tmp/bestacc" | grep checkpoint- | sort -t- -k2 -n | tr '\n' ' ')" = "$records" ] &&
    [ "$(echo "$records" | wc -w)" -ge 2 ] ||
    { echo "best accuracy: saved $(ls "$tmp/bestacc" | grep checkpoint- | tr '\n' ' '), records: $records"; cat "$tmp/bestacc/log.jsonl"; fail=1; }

# the run_clm / old names are the same flags
run tokold --max_steps 2 --tokenizer_name none --evaluation_strategy no --save_strategy no --report_to none --do_train
run toknew --max_steps 2 --tokenizer_name_or_path none --eval_strategy no --save_strategy no
[ "$(notps "$tmp/tokold/log.jsonl")" = "$(notps "$tmp/toknew/log.jsonl")" ] && ! grep -q eval_loss "$tmp/toknew/log.jsonl" ||
    { echo "--tokenizer_name / --evaluation_strategy are not their new names' flags"; fail=1; }
# eval_delay: steps for eval_strategy steps (none before step 5), epochs for epoch (none before the second epoch)
run delay --max_steps 10 --eval_steps 2 --eval_delay 5 --save_strategy no
run delayep --num_train_epochs 3 --eval_strategy epoch --eval_delay 2 --logging_steps 1000 --save_strategy no
[ "$(steps_of "$tmp/delay/log.jsonl" eval_loss)" = "6 8 10 " ] && [ "$(steps_of "$tmp/delayep/log.jsonl" eval_loss)" = "112 168 " ] ||
    { echo "eval_delay: evaluations at $(steps_of "$tmp/delay/log.jsonl" eval_loss) / $(steps_of "$tmp/delayep/log.jsonl" eval_loss)"; fail=1; }
echo "when-flags: ratios, epochs, first step, on start, do_eval as the Trainer's rules say"

# the best model (the Trainer's metric_for_best_model / greater_is_better / load_best_model_at_end): with
# greater_is_better the first evaluation (the highest loss of a falling curve) stays the best; save_total_limit 1
# keeps it beside the newest during the run and alone at its end; its weights are loaded, so --do_eval measures
# exactly step 3's loss; a run stopped at step 6 and resumed keeps the same best
B=(--max_steps 12 --logging_steps 3 --eval_steps 3 --save_steps 3 --save_total_limit 1 --load_best_model_at_end
   --do_eval --metric_for_best_model loss --greater_is_better)
run best "${B[@]}"
third=$(grep eval_loss "$tmp/best/log.jsonl" | sed -nE 's/.*"eval_loss":([^,]*),.*"step":3}$/\1/p')
res=$(sed -nE 's/.*"eval_loss":[[:space:]]*([^,]*),.*/\1/p' "$tmp/best/eval_results.json")
state() { grep -E '"best_(metric|global_step|model_checkpoint)"' "$1" | tr -d ' \t' | sed "s|$tmp/[a-z]*/||"; }
[ "$(ls "$tmp/best" | grep checkpoint- | tr '\n' ' ')" = "checkpoint-3 " ] && [ -n "$third" ] &&
    [ "$third" = "$res" ] && grep -q "loaded the best model: $tmp/best/checkpoint-3 (eval_loss" "$tmp/best.log" &&
    grep -q "^saved $tmp/best/checkpoint-12$" "$tmp/best.log" &&
    state "$tmp/best/checkpoint-3/trainer_state.json" | grep -qx '"best_global_step":3,' &&
    cmp -s "$tmp/best/model.safetensors" "$tmp/best/checkpoint-3/model.safetensors" ||
    { echo "best model: kept $(ls "$tmp/best"), step 3 $third, eval_results $res"; cat "$tmp/best.log"; fail=1; }
LT_TEST_SIGNAL=TERM@6 "$LT" train "${M[@]}" "${B[@]}" --output_dir "$tmp/bestr" > "$tmp/bestr.log" 2>&1
"$LT" train "${M[@]}" "${B[@]}" --output_dir "$tmp/bestr" --resume_from_checkpoint latest >> "$tmp/bestr.log" 2>&1 ||
    { echo "best model: the resumed run failed"; cat "$tmp/bestr.log"; fail=1; }
[ "$(ls "$tmp/bestr" | grep checkpoint- | tr '\n' ' ')" = "checkpoint-3 " ] &&
    [ "$(nospeed "$tmp/bestr/eval_results.json")" = "$(nospeed "$tmp/best/eval_results.json")" ] ||
    { echo "best model: a resumed run lost the best: $(ls "$tmp/bestr")"; fail=1; }
# --save_strategy best: a checkpoint exactly at each evaluation that set a new lowest loss (read off the log)
run sbest --max_steps 16 --learning_rate 3e-2 --logging_steps 2 --eval_steps 2 --save_strategy best --eval_max_batches 1
want=$(grep eval_loss "$tmp/sbest/log.jsonl" | sed -E 's/.*"eval_loss":([^,]*),.*"step":([0-9]+)}$/\2 \1/' |
       awk 'NR == 1 || $2 < best { best = $2; printf "checkpoint-%s ", $1 }')
got=$(ls "$tmp/sbest" | grep checkpoint- | sort -t- -k2 -n | tr '\n' ' ')
case "$want" in *checkpoint-16\ ) endline="model in $tmp/sbest and $tmp/sbest/checkpoint-16" ;; *) endline="model in $tmp/sbest; best model" ;; esac
[ -n "$want" ] && [ "$got" = "$want" ] && grep -qF "$endline" "$tmp/sbest.log" ||
    { echo "--save_strategy best: checkpoints $got, new bests at $want"; cat "$tmp/sbest/log.jsonl"; fail=1; }
# the best evaluation at a step that saved nothing (evaluations every 3 steps, checkpoints every 4; the highest loss
# is "best" here, so step 3's): the last line says so instead of naming a checkpoint that does not exist, and the
# state has best_global_step 3 but no best_model_checkpoint, as the Trainer's
run bestns --max_steps 8 --logging_steps 4 --eval_steps 3 --save_steps 4 --metric_for_best_model loss --greater_is_better
grep -qE "; best evaluation \(eval_loss [0-9.]+\) at step 3, which saved no checkpoint$" "$tmp/bestns.log" &&
    state "$tmp/bestns/checkpoint-8/trainer_state.json" | grep -qx '"best_global_step":3,' &&
    ! grep -q best_model_checkpoint "$tmp/bestns/checkpoint-8/trainer_state.json" ||
    { echo "best model at an unsaved step: $(grep '^done:' "$tmp/bestns.log")"; state "$tmp/bestns/checkpoint-8/trainer_state.json"; fail=1; }
echo "best model: tracked, kept, loaded and resumed as the Trainer does"

# --data_seed orders the data and nothing else: the same initial model as --seed's (its loss on start), other
# training losses; equal to --seed it is the run without it
run dseed --max_steps 3 --eval_on_start --logging_steps 1 --eval_steps 0 --save_strategy no --data_seed 8
run dsame --max_steps 3 --eval_on_start --logging_steps 1 --eval_steps 0 --save_strategy no --data_seed 7
run dnone --max_steps 3 --eval_on_start --logging_steps 1 --eval_steps 0 --save_strategy no
[ "$(head -1 "$tmp/dseed/log.jsonl")" = "$(head -1 "$tmp/dnone/log.jsonl")" ] &&
    [ "$(notps "$tmp/dsame/log.jsonl")" = "$(notps "$tmp/dnone/log.jsonl")" ] &&
    [ "$(notps "$tmp/dseed/log.jsonl" | tail -n +2)" != "$(notps "$tmp/dnone/log.jsonl" | tail -n +2)" ] ||
    { echo "--data_seed: not the data order alone"; cat "$tmp/dseed/log.jsonl" "$tmp/dnone/log.jsonl"; fail=1; }
# --save_only_model: the same weights as a full checkpoint's, no optimizer state; resuming from it is refused with
# what to do instead, and it still loads as a model
run full --max_steps 4 --save_steps 2 --eval_steps 0
run lean --max_steps 4 --save_steps 2 --eval_steps 0 --save_only_model
out=$("$LT" train "${M[@]}" --max_steps 6 --save_steps 2 --eval_steps 0 --save_only_model --output_dir "$tmp/lean" \
      --resume_from_checkpoint latest 2>&1); rc=$?
cmp -s "$tmp/lean/checkpoint-4/model.safetensors" "$tmp/full/checkpoint-4/model.safetensors" &&
    [ ! -e "$tmp/lean/checkpoint-4/optimizer.safetensors" ] && [ -e "$tmp/full/checkpoint-4/optimizer.safetensors" ] &&
    [ $rc -ne 0 ] && echo "$out" | grep -qF "(a --save_only_model checkpoint), so training cannot resume from it; start a new run from its weights with --model_name_or_path" &&
    [ ! -e "$tmp/lean/checkpoint-6" ] &&
    "$LT" train "${M[@]}" --model_name_or_path "$tmp/lean/checkpoint-4" --max_steps 1 --eval_steps 0 --save_strategy no \
        --output_dir "$tmp/fromlean" > /dev/null 2>&1 ||
    { echo "--save_only_model: rc=$rc $out"; ls "$tmp/lean/checkpoint-4"; fail=1; }
# run_clm's --max_train_samples / --max_eval_samples: the first N blocks, in file order. Training on the first 40
# blocks of text.txt is training on a file of exactly those 40 x 32 + 1 bytes (the same shuffles of 40 blocks);
# the first 16 validation blocks are what --eval_max_batches 2 (of 8) evaluates
head -c 1281 "$tmp/text.txt" > "$tmp/text40.txt"
tail -c 4000 "$tmp/text.txt" > "$tmp/val.txt"
V=(--validation_file "$tmp/val.txt" --num_train_epochs 4 --per_device_train_batch_size 4 --logging_steps 2 --eval_steps 5 --save_strategy no)
run maxtr "${V[@]}" --max_train_samples 40
run cut40 "${V[@]}" --train_file "$tmp/text40.txt"
run maxev --max_steps 4 --eval_steps 2 --save_strategy no --eval_max_batches 0 --max_eval_samples 16
run evb2 --max_steps 4 --eval_steps 2 --save_strategy no
grep -q "^data: 40 training blocks" "$tmp/maxtr.log" && [ "$(notps "$tmp/maxtr/log.jsonl")" = "$(notps "$tmp/cut40/log.jsonl")" ] &&
    [ "$(notps "$tmp/maxev/log.jsonl")" = "$(notps "$tmp/evb2/log.jsonl")" ] && grep -q eval_loss "$tmp/maxev/log.jsonl" ||
    { echo "--max_train_samples / --max_eval_samples: not the first blocks"; grep '^data' "$tmp/maxtr.log" "$tmp/cut40.log"; fail=1; }
# reduce_lr_on_plateau, stepped by each evaluation's loss: in max mode with an absolute threshold of 1e9 only the
# first evaluation (step 2) is ever an improvement, so with patience 0 each later one (4, 6, 8) halves the lr; a
# run stopped at step 5 resumes with the scheduler's state (the same log)
P=(--max_steps 10 --logging_steps 1 --eval_steps 2 --save_steps 5 --learning_rate 1e-3 --lr_scheduler_type reduce_lr_on_plateau
   --lr_scheduler_kwargs '{"mode": "max", "factor": 0.5, "patience": 0, "threshold": 1e9, "threshold_mode": "abs"}')
# stop_resume NAME ARGS...: the run NAME, and the same run stopped after step 5 and resumed in NAMEr
stop_resume() {
    local name=$1; shift
    run "$name" "$@"
    LT_TEST_SIGNAL=TERM@5 "$LT" train "${M[@]}" "$@" --output_dir "$tmp/${name}r" > "$tmp/${name}r.log" 2>&1
    "$LT" train "${M[@]}" "$@" --output_dir "$tmp/${name}r" --resume_from_checkpoint latest >> "$tmp/${name}r.log" 2>&1 ||
        { echo "$name: the resumed run failed"; cat "$tmp/${name}r.log"; fail=1; }
}
stop_resume plat "${P[@]}"
lrs=$(grep '"loss"' "$tmp/plat/log.jsonl" | sed -E 's/.*"learning_rate":([^,]*),.*/\1/' | tr '\n' ' ')
[ "$lrs" = "0.001 0.001 0.001 0.001 0.0005 0.0005 0.00025 0.00025 0.000125 0.000125 " ] &&
    [ "$(notps "$tmp/platr/log.jsonl")" = "$(notps "$tmp/plat/log.jsonl")" ] ||
    { echo "reduce_lr_on_plateau: learning rates $lrs, or the resumed log differs"; fail=1; }
# greedy (GreedyLR), stepped by each evaluation's loss: with patience 0 every improvement divides the lr by the
# factor (0.95 by default: the lr saved at step 5, 3e-3 / 0.95^2, needs 16 significant digits), so the run stopped
# at step 5 resumes only if trainer_state.json holds the scheduler's lr, counters and window exactly (read back to
# the bit: the same log and the same final weights; cJSON's own 15 digits fail this)
G=(--max_steps 10 --logging_steps 1 --eval_steps 2 --save_steps 5 --learning_rate 3e-3 --lr_scheduler_type greedy
   --lr_scheduler_kwargs '{"patience": 0, "smooth": true, "window_size": 2}')
stop_resume greedy "${G[@]}"
glrs=$(grep '"loss"' "$tmp/greedy/log.jsonl" | sed -E 's/.*"learning_rate":([^,]*),.*/\1/' | sort -u | wc -l)
[ "$glrs" -ge 3 ] && grep -q "greedy: learning_rate now" "$tmp/greedy.log" &&
    [ "$(notps "$tmp/greedyr/log.jsonl")" = "$(notps "$tmp/greedy/log.jsonl")" ] &&
    cmp -s "$tmp/greedyr/model.safetensors" "$tmp/greedy/model.safetensors" ||
    { echo "greedy: $glrs learning rates, or the resumed run differs"; cat "$tmp/greedyr.log"; fail=1; }
# --include_num_input_tokens_seen: every log entry (training and evaluation) carries the input tokens seen so far,
# step x 8 x 32 x 2 here, a resumed run included (trainer_state.json keeps the count); runs without it carry none
stop_resume ntok --max_steps 8 --logging_steps 2 --eval_steps 3 --save_steps 5 --include_num_input_tokens_seen true
ntok_bad=$(sed -nE 's/.*"num_input_tokens_seen":([0-9]+),"step":([0-9]+).*/\1 \2/p' "$tmp/ntok/log.jsonl" |
    awk '{ n++; if ($1 != $2 * 512) bad++ } END { print (n >= 6 ? bad + 0 : "too few") }')
[ "$ntok_bad" = 0 ] && [ "$(notps "$tmp/ntokr/log.jsonl")" = "$(notps "$tmp/ntok/log.jsonl")" ] &&
    ! grep -q num_input_tokens_seen "$tmp/plat/log.jsonl" ||
    { echo "num_input_tokens_seen: $ntok_bad entries wrong, or the resumed log differs"; cat "$tmp/ntok/log.jsonl"; fail=1; }
echo "data_seed, save_only_model, reduce_lr_on_plateau, greedy, num_input_tokens_seen: as the Trainer's"

# run_clm's results files: train_results.json's train_loss is the mean of every step's loss (each logged here), a
# run stopped at step 5 and resumed gives the same one (its sum kept by the checkpoint), total_flos is 6 x the
# input tokens x the parameters but the embeddings (1 block of C 32: 12 C^2 + 13 C, ln_f 2 C: 12768);
# all_results.json holds the train and eval keys; output_dir gets trainer_state.json (save_state)
stop_resume res --max_steps 8 --logging_steps 1 --eval_steps 4 --save_steps 5 --do_eval
mean=$(sed -nE 's/^\{"loss":([^,]*),.*/\1/p' "$tmp/res/log.jsonl" | awk '{ s += $1; n++ } END { if (n) printf "%.17g", s / n }')
tl=$(sed -nE 's/.*"train_loss":[[:space:]]*([^,]*),?$/\1/p' "$tmp/res/train_results.json")
flos=$(sed -nE 's/.*"total_flos":[[:space:]]*([^,]*),?$/\1/p' "$tmp/res/train_results.json")
awk -v a="$mean" -v b="$tl" -v f="$flos" 'BEGIN { exit !(a != "" && b != "" && (a - b) ^ 2 <= (1e-15 * b) ^ 2 &&
                                                          f == 6 * 8 * 8 * 2 * 32 * 12768) }' &&
    [ "$(nospeed "$tmp/resr/train_results.json")" = "$(nospeed "$tmp/res/train_results.json")" ] &&
    grep -q '"train_samples":[[:space:]]*894,' "$tmp/res/train_results.json" &&
    grep -q '"train_runtime":' "$tmp/res/train_results.json" &&
    grep -q '"eval_accuracy":' "$tmp/res/all_results.json" && grep -q '"train_loss":' "$tmp/res/all_results.json" &&
    grep -q '"global_step":[[:space:]]*8,' "$tmp/res/trainer_state.json" ||
    { echo "results files: mean step loss $mean, train_loss $tl, total_flos $flos"; cat "$tmp/res/train_results.json"
      diff <(nospeed "$tmp/resr/train_results.json") <(nospeed "$tmp/res/train_results.json"); fail=1; }
echo "train_results.json, all_results.json, trainer_state.json: run_clm's, resumes included"

# --label_smoothing_factor f (the Trainer's LabelSmoother: (1 - f) x cross-entropy + f x the mean of -log p; its
# numbers are held to transformers' in test_gpt2): the evaluation loss of one model is affine in f, so f 0.5 gives
# the mean of f 0 and f 1 (to float rounding; a factor applied to training only, or not at all, fails it); f 0 is
# the run without the flag bit for bit; a smoothed run trains, apart from the plain one
for f in 0 0.5 1; do run "ls$f" --do_train false --do_eval --label_smoothing_factor $f; done
ls_eval() { sed -nE 's/.*"eval_loss":[[:space:]]*([^,]*),.*/\1/p' "$tmp/ls$1/eval_results.json"; }
awk -v a="$(ls_eval 0)" -v h="$(ls_eval 0.5)" -v b="$(ls_eval 1)" \
    'BEGIN { m = (a + b) / 2; e = h - m; if (e < 0) e = -e; exit !(a > 0 && b > a + 0.01 && e <= 1e-6 * m) }' &&
    [ "$(ls_eval 0)" = "$only" ] && grep -q "^label smoothing 0.5: the loss" "$tmp/ls0.5.log" ||
    { echo "label smoothing: eval losses f 0 $(ls_eval 0), f 0.5 $(ls_eval 0.5), f 1 $(ls_eval 1) not affine in f"; fail=1; }
run lsplain --max_steps 4 --logging_steps 1 --eval_steps 2 --save_strategy no
run lszero --max_steps 4 --logging_steps 1 --eval_steps 2 --save_strategy no --label_smoothing_factor 0
run lssmooth --max_steps 4 --logging_steps 1 --eval_steps 2 --save_strategy no --label_smoothing_factor 0.1
first_loss() { head -1 "$1" | sed -nE 's/.*"loss":([^,]*),.*/\1/p'; }
[ "$(notps "$tmp/lszero/log.jsonl")" = "$(notps "$tmp/lsplain/log.jsonl")" ] &&
    [ "$(first_loss "$tmp/lssmooth/log.jsonl")" != "$(first_loss "$tmp/lsplain/log.jsonl")" ] &&
    awk -v a="$(first_loss "$tmp/lssmooth/log.jsonl")" -v b="$(sed -n '4p' "$tmp/lssmooth/log.jsonl" | sed -nE 's/.*"loss":([^,]*),.*/\1/p')" \
        'BEGIN { exit !(b < a) }' ||
    { echo "label smoothing 0 is not the plain run, or 0.1 does not train"; cat "$tmp/lssmooth/log.jsonl"; fail=1; }

bad "--logging_steps: bad value '2.5': expected a whole number of steps, or a ratio in (0, 1)" "${M[@]}" --logging_steps 2.5
bad "--warmup_steps: bad value '-1'" "${M[@]}" --warmup_steps -1
bad "--eval_strategy must be no, steps or epoch" "${M[@]}" --eval_strategy sometimes
bad "--report_to: leantrain reports to no service" "${M[@]}" --report_to wandb
bad "--do_train false leaves nothing to do: add --do_eval" "${M[@]}" --do_train false
bad "--logging_steps must be > 0" "${M[@]}" --logging_steps 0
bad "--load_best_model_at_end and --save_strategy best need evaluations" "${M[@]}" --load_best_model_at_end --eval_strategy no
bad "--load_best_model_at_end and --save_strategy best need evaluations" "${M[@]}" --save_strategy best --eval_steps 0
bad "--load_best_model_at_end needs --save_strategy to match --eval_strategy" "${M[@]}" --load_best_model_at_end --save_strategy epoch
bad "--load_best_model_at_end needs --save_steps to be a multiple of --eval_steps" "${M[@]}" --load_best_model_at_end --save_steps 5 --eval_steps 2
bad "--load_best_model_at_end needs --save_steps to be a multiple of --eval_steps" "${M[@]}" --load_best_model_at_end --save_steps 4 --eval_steps 0.5
bad "--metric_for_best_model: leantrain's evaluation measures loss, perplexity and accuracy" "${M[@]}" --metric_for_best_model bleu
bad "--metric_for_best_model accuracy needs the evaluation's predictions: drop --prediction_loss_only" "${M[@]}" --metric_for_best_model eval_accuracy --prediction_loss_only
bad "--save_strategy must be no, steps, epoch or best" "${M[@]}" --save_strategy sometimes
bad "--eval_delay must be >= 0" "${M[@]}" --eval_delay -1
bad "--lr_scheduler_type reduce_lr_on_plateau and greedy are stepped by evaluations" "${M[@]}" --lr_scheduler_type reduce_lr_on_plateau --eval_steps 0
bad "--lr_scheduler_type reduce_lr_on_plateau and greedy are stepped by evaluations" "${M[@]}" --lr_scheduler_type greedy --eval_strategy no
bad "--max_train_samples must be >= 0 (0: all)" "${M[@]}" --max_train_samples -3
bad "--include_num_input_tokens_seen must be no, all, non_padding, true or false" "${M[@]}" --include_num_input_tokens_seen some
# --neftune_noise_alpha (the Trainer's NEFTune): noise on the token embeddings of training steps only, so the
# evaluation before step 1 is the plain run's to the bit and step 1's loss is not; alpha 0 is the plain run; the
# noise comes from (--seed, micro-batch), so a run stopped at step 5 resumes to the uninterrupted run's log and
# weights (noise drawn by a generator that does not restart in place fails it)
N=(--max_steps 8 --logging_steps 1 --eval_steps 4 --save_steps 5)
run nefplain "${N[@]}" --eval_on_start
run nefzero "${N[@]}" --eval_on_start --neftune_noise_alpha 0
run nefstart "${N[@]}" --eval_on_start --neftune_noise_alpha 5
stop_resume nef "${N[@]}" --neftune_noise_alpha 5
[ "$(notps "$tmp/nefzero/log.jsonl")" = "$(notps "$tmp/nefplain/log.jsonl")" ] &&
    [ "$(head -1 "$tmp/nefstart/log.jsonl")" = "$(head -1 "$tmp/nefplain/log.jsonl")" ] &&
    [ "$(sed -n 2p "$tmp/nefstart/log.jsonl" | notps /dev/stdin)" != "$(sed -n 2p "$tmp/nefplain/log.jsonl" | notps /dev/stdin)" ] &&
    grep -q "^NEFTune: training steps add uniform noise of magnitude 5 / sqrt(32 x 32) = 0.1562" "$tmp/nef.log" &&
    [ "$(notps "$tmp/nefr/log.jsonl")" = "$(notps "$tmp/nef/log.jsonl")" ] &&
    cmp -s "$tmp/nefr/model.safetensors" "$tmp/nef/model.safetensors" ||
    { echo "NEFTune: evaluation not the plain run's, training not apart from it, or the resumed run differs"; cat "$tmp/nef.log"; fail=1; }
# --early_stopping_patience / --early_stopping_threshold (transformers' EarlyStoppingCallback): with the loss as a
# metric where greater is better, every evaluation after the first fails to improve, so patience 2 stops at the
# third (step 6 of 20); a threshold larger than any improvement does the same for the usual metric; the steps
# before are the run without it; trainer_state.json keeps the counter in the Trainer's stateful_callbacks, and a
# run stopped at step 5 (counter 1) resumes to stop at 6 as well (a counter not restored runs on to 8)
E=(--max_steps 20 --logging_steps 2 --eval_steps 2 --save_steps 2 --metric_for_best_model loss)
stop_resume es "${E[@]}" --greater_is_better true --early_stopping_patience 2
run esthr "${E[@]}" --early_stopping_patience 2 --early_stopping_threshold 10
run esnone "${E[@]}" --greater_is_better true
upto6() { notps "$1" | awk -F'"step":' '{ split($2, a, /[,}]/); if (a[1] + 0 <= 6) print }'; }
grep -q "^early stopping at step 6 of 20: eval_loss did not improve on .* in 2 evaluations" "$tmp/es.log" &&
    [ "$(steps_of "$tmp/es/log.jsonl" eval_loss)" = "2 4 6 " ] && [ "$(steps_of "$tmp/esthr/log.jsonl" eval_loss)" = "2 4 6 " ] &&
    [ "$(notps "$tmp/es/log.jsonl")" = "$(upto6 "$tmp/esnone/log.jsonl")" ] &&
    grep -q '"early_stopping_patience_counter":[[:space:]]*2' "$tmp/es/checkpoint-6/trainer_state.json" &&
    [ "$(notps "$tmp/esr/log.jsonl")" = "$(notps "$tmp/es/log.jsonl")" ] &&
    cmp -s "$tmp/esr/model.safetensors" "$tmp/es/model.safetensors" ||
    { echo "early stopping: not at step 6 as the callback would, or the resumed run differs"; cat "$tmp/es.log" "$tmp/esr.log"; fail=1; }
bad "--early_stopping_patience needs the metric it watches" "${M[@]}" --early_stopping_patience 2
bad "--early_stopping_patience counts evaluations" "${M[@]}" --early_stopping_patience 2 --metric_for_best_model loss --eval_strategy no
bad "--early_stopping_threshold must be >= 0" "${M[@]}" --early_stopping_threshold -1
bad "--neftune_noise_alpha must be >= 0" "${M[@]}" --neftune_noise_alpha -1
bad "--label_smoothing_factor must be in [0, 1]" "${M[@]}" --label_smoothing_factor 1.5
bad "--label_smoothing_factor must be in [0, 1]" "${M[@]}" --label_smoothing_factor -0.1
# Flags of the Trainer that change nothing here are taken, not refused: --gradient_checkpointing_kwargs with
# use_reentrant (either value: the same run as checkpointing without it), --save_safetensors true, --disable_tqdm
# (the progress bar, drawn only on a terminal: `script` gives the run one, and the bar's ETA shows without the
# flag only); other values fail with one line
run ckpt --max_steps 4 --logging_steps 1 --eval_steps 2 --gradient_checkpointing
run ckptkw --max_steps 4 --logging_steps 1 --eval_steps 2 --gradient_checkpointing \
    --gradient_checkpointing_kwargs '{"use_reentrant": false}' --save_safetensors true
[ "$(notps "$tmp/ckptkw/log.jsonl")" = "$(notps "$tmp/ckpt/log.jsonl")" ] &&
    cmp -s "$tmp/ckptkw/model.safetensors" "$tmp/ckpt/model.safetensors" ||
    { echo "--gradient_checkpointing_kwargs / --save_safetensors true changed the run"; cat "$tmp/ckptkw.log"; fail=1; }
tty_run() { # name, args...: the run on a pseudo-terminal, its screen in $tmp/<name>.tty
    local name=$1; shift
    local cmd="$LT train ${M[*]} --max_steps 3 --logging_steps 3 --eval_strategy no --output_dir $tmp/$name $*"
    script -qec "$cmd" /dev/null > "$tmp/$name.tty" 2>&1 || { echo "tty run $name failed"; cat "$tmp/$name.tty"; fail=1; }
}
tty_run bar
tty_run nobar --disable_tqdm true
grep -q "ETA" "$tmp/bar.tty" && ! grep -q "ETA" "$tmp/nobar.tty" && grep -q "^done: 3 steps" "$tmp/nobar.tty" ||
    { echo "--disable_tqdm: the progress bar shown on a terminal without it and not with it, expected"; cat "$tmp/bar.tty" "$tmp/nobar.tty"; fail=1; }
bad "--gradient_checkpointing_kwargs {\"use_reentrant\": 1}: expected a JSON object with use_reentrant alone" "${M[@]}" \
    --gradient_checkpointing_kwargs '{"use_reentrant": 1}'
bad "(no other key" "${M[@]}" --gradient_checkpointing_kwargs '{"preserve_rng_state": true}'
bad "--save_safetensors false: leantrain writes only safetensors" "${M[@]}" --save_safetensors false

# training_args.json: every checkpoint and the final model record the run's flags; given back as the first argument
# (run_clm's JSON form) they make the same run, bit for bit, and flags after the file override it
run targs --max_steps 6 --logging_steps 2 --eval_steps 3 --save_steps 3 --optim adamw_bnb_8bit --warmup_steps 0.25 \
    --weight_decay 0.1 --lr_scheduler_type cosine --use_cpu --run_name "first try"
ta="$tmp/targs/checkpoint-6/training_args.json"
grep -q '"learning_rate":[[:space:]]*0.003,' "$ta" && grep -q '"optim":[[:space:]]*"adamw_bnb_8bit",' "$ta" &&
    grep -q '"warmup_steps":[[:space:]]*0.25,' "$ta" && grep -q '"device":[[:space:]]*"cpu",' "$ta" &&
    grep -q '"run_name":[[:space:]]*"first try"' "$ta" && grep -q '"greater_is_better":[[:space:]]*null,' "$ta" &&
    ! grep -q '"evaluation_strategy"' "$ta" && cmp -s "$ta" "$tmp/targs/training_args.json" &&
    [ -s "$tmp/targs/checkpoint-3/training_args.json" ] ||
    { echo "training_args.json: not in every checkpoint and output_dir, or without the run's flags"; cat "$ta"; fail=1; }
"$LT" train "$ta" --output_dir "$tmp/targs2" > "$tmp/targs2.log" 2>&1 || { echo "run from training_args.json failed"; cat "$tmp/targs2.log"; fail=1; }
for f in model.safetensors optimizer.safetensors; do
    cmp -s "$tmp/targs/checkpoint-6/$f" "$tmp/targs2/checkpoint-6/$f" || { echo "the run from training_args.json: $f differs"; fail=1; }
done
[ "$(notps "$tmp/targs/log.jsonl")" = "$(notps "$tmp/targs2/log.jsonl")" ] &&
    [ "$(diff "$ta" "$tmp/targs2/checkpoint-6/training_args.json" | grep -c '^[<>]')" = 2 ] &&
    grep -q "\"output_dir\":[[:space:]]*\"$tmp/targs2\"" "$tmp/targs2/checkpoint-6/training_args.json" ||
    { echo "the run from training_args.json: another log, or its flags differ by more than output_dir"; fail=1; }
"$LT" train "$ta" --max_steps 3 --learning_rate 1e-3 --output_dir "$tmp/targs3" > "$tmp/targs3.log" 2>&1 &&
    grep -q '"learning_rate":[[:space:]]*0.001,' "$tmp/targs3/checkpoint-3/training_args.json" &&
    ! cmp -s "$tmp/targs/checkpoint-3/model.safetensors" "$tmp/targs3/checkpoint-3/model.safetensors" ||
    { echo "flags after training_args.json did not override it"; cat "$tmp/targs3.log"; fail=1; }
printf '{"learning_rate": 0.001, "per_device_train_batch_size": null, "report_to": [], "n_layer": 1,\n "bogus_flag": 1}' > "$tmp/unknown.json"
bad "$tmp/unknown.json: unknown flag \"bogus_flag\"" "$tmp/unknown.json" "${M[@]}"
printf '{"learning_rate": "fast"}' > "$tmp/badval.json"
bad "$tmp/badval.json: --learning_rate: bad value 'fast': expected a number" "$tmp/badval.json" "${M[@]}"
printf '{"learning_rate": 0.001' > "$tmp/broken.json"
bad "$tmp/broken.json: not a JSON object of flags" "$tmp/broken.json" "${M[@]}"
bad "$tmp/missing.json: cannot open the flags file" "$tmp/missing.json" "${M[@]}"
bad "unexpected argument 'stray': flags start with --" "${M[@]}" stray
bad "--use_cpu and --device cuda ask for different devices" "${M[@]}" --use_cpu --device cuda
# the Trainer's own JSON dump (TrainingArguments.to_json_string(): all 114 fields of transformers 5.24, those
# without an effect here at their defaults) runs as the same flags given to leantrain; a field whose value asks
# for what leantrain does not do is refused with the file, the flag and the reason
"$LT" train tests/data/hf_training_args.json "${M[@]}" --output_dir "$tmp/hfjson" > "$tmp/hfjson.log" 2>&1 ||
    { echo "the Trainer's JSON dump was refused"; cat "$tmp/hfjson.log"; fail=1; }
run hfflags --max_steps 4 --lr_scheduler_type cosine --warmup_steps 1 --weight_decay 0.1 --logging_steps 1 \
    --eval_steps 2 --save_steps 2 --optim adamw_torch --use_cpu --dataloader_num_workers 2
[ "$(notps "$tmp/hfjson/log.jsonl")" = "$(notps "$tmp/hfflags/log.jsonl")" ] && [ -n "$(steps_of "$tmp/hfjson/log.jsonl" loss)" ] &&
    cmp -s "$tmp/hfjson/checkpoint-4/model.safetensors" "$tmp/hfflags/checkpoint-4/model.safetensors" ||
    { echo "the Trainer's JSON dump made another run than its flags"; cat "$tmp/hfjson/log.jsonl" "$tmp/hfflags/log.jsonl"; fail=1; }
sed 's/"push_to_hub": false/"push_to_hub": true/' tests/data/hf_training_args.json > "$tmp/hub.json"
bad "$tmp/hub.json: --push_to_hub true is not taken: no Hub client" "$tmp/hub.json" "${M[@]}"
bad "--deepspeed ds_config.json is not taken: one device and no DeepSpeed" "${M[@]}" --deepspeed ds_config.json
bad "--torch_compile true is not taken" "${M[@]}" --torch_compile
bad "--local_rank 0 is not taken: one process" "${M[@]}" --local_rank 0
bad "--dataloader_num_workers: bad value 'many': expected an integer" "${M[@]}" --dataloader_num_workers many
# plan takes the flags file too: the run's memory table, as its flags give it
plan_json=$("$LT" plan "$ta" | grep '^memory (MiB)')
plan_flags=$("$LT" plan "${M[@]}" --optim adamw_bnb_8bit --use_cpu | grep '^memory (MiB)')
[ -n "$plan_json" ] && [ "$plan_json" = "$plan_flags" ] && grep -qF "${plan_json% *}" "$tmp/targs.log" ||
    { echo "plan with training_args.json: '$plan_json' against its flags' '$plan_flags' and the run's table"; fail=1; }
# a resume says which flags differ from the checkpoint's run, and nothing when none do
"$LT" train "$ta" --output_dir "$tmp/targs" --resume_from_checkpoint latest --max_steps 8 --weight_decay 0 \
    > "$tmp/targs-res.log" 2>&1 &&
    grep -q '^note: 2 flags differ from the checkpoint.s run: --weight_decay 0 (was 0.1), --max_steps 8 (was 6)$' "$tmp/targs-res.log" &&
    "$LT" train "$tmp/targs/checkpoint-8/training_args.json" --resume_from_checkpoint latest > "$tmp/targs-res2.log" 2>&1 &&
    grep -q 'resuming from' "$tmp/targs-res2.log" && ! grep -q '^note:' "$tmp/targs-res2.log" &&
    grep -q '"resume_from_checkpoint":[[:space:]]*"",' "$tmp/targs/checkpoint-8/training_args.json" ||
    { echo "resume with other flags: no note naming them, or a note with the same flags"; cat "$tmp/targs-res.log" "$tmp/targs-res2.log"; fail=1; }
echo "training_args.json: in every checkpoint; given back, the same run bit for bit; bad files refused; a resume names changed flags"
echo "the Trainer's JSON dump: taken, the same run as its flags; the Trainer's flags without effect taken, those asking for more refused"

# run_clm's own flags: those with nothing to act on are taken (a run_clm command line runs as it is); --config_name
# trains from scratch with a config.json (its sizes, and GPT2Config's dropout 0.1 where it names none, as
# transformers reads it) or a preset name (the Hub config of that name: --model's table); --model_type gpt2 is
# GPT2Config(), the gpt2 preset's size; what needs the Hub or the datasets library is refused with what to do
# (--preprocessing_num_workers and --keep_linebreaks shape run_clm's blocks: tests/test_data.c, tests/cli/runclm.sh)
printf '{"model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 32, "vocab_size": 256, "attn_pdrop": 0.2}\n' > "$tmp/cfg.json"
C=(--train_file "$tmp/text.txt" --block_size 32 --per_device_train_batch_size 4 --max_steps 2 --seed 7 --threads 2
   --eval_strategy no --save_steps 2)
"$LT" train "${C[@]}" --config_name "$tmp/cfg.json" --output_dir "$tmp/clm" --cache_dir "$tmp/cache" \
    --use_fast_tokenizer --overwrite_cache --preprocessing_num_workers 4 --keep_linebreaks true \
    --trust_remote_code false --dtype auto --torch_dtype float32 --low_cpu_mem_usage --model_revision main \
    --token hf_x > "$tmp/clm.log" 2>&1 &&
    grep -q '"n_embd":[[:space:]]*32,' "$tmp/clm/config.json" && grep -q '"attn_pdrop":[[:space:]]*0.2,' "$tmp/clm/config.json" &&
    grep -q '"resid_pdrop":[[:space:]]*0.1,' "$tmp/clm/config.json" && [ ! -e "$tmp/cache" ] ||
    { echo "run_clm flags: the run failed or did not take the config"; cat "$tmp/clm.log" "$tmp/clm/config.json"; fail=1; }
for c in openai-community/gpt2-medium "$tmp/clm"; do
    want=$("$LT" plan --model gpt2-medium --block_size 64 --per_device_train_batch_size 1 | grep '^memory (MiB)')
    [ "$c" = "$tmp/clm" ] && want=$("$LT" plan --model_name_or_path "$tmp/clm" --block_size 32 --per_device_train_batch_size 1 | grep '^memory (MiB)')
    got=$("$LT" plan --config_name "$c" --block_size $([ "$c" = "$tmp/clm" ] && echo 32 || echo 64) --per_device_train_batch_size 1 | grep '^memory (MiB)')
    [ -n "$got" ] && [ "$got" = "$want" ] || { echo "plan --config_name $c: '$got', expected '$want'"; fail=1; }
done
got=$("$LT" plan --model_type gpt2 --block_size 64 --per_device_train_batch_size 1 | grep '^memory (MiB)')
[ "$got" = "$("$LT" plan --model gpt2 --block_size 64 --per_device_train_batch_size 1 | grep '^memory (MiB)')" ] ||
    { echo "plan --model_type gpt2: '$got', not the gpt2 preset's"; fail=1; }
bad "--dataset_name wikitext is not taken: no datasets library or Hub: give the text as --train_file" "${M[@]}" --dataset_name wikitext
bad "--dtype bfloat16 is not taken: the weights are fp32" "${M[@]}" --dtype bfloat16
bad "--streaming true is not taken" "${M[@]}" --streaming
bad "--model_revision v2 is not taken: no Hub client" "${M[@]}" --model_revision v2
bad "--model_type: leantrain trains GPT-2 only" "${M[@]}" --model_type llama
bad "--model_type gpt2 trains GPT2Config()'s size" "${M[@]}" --model_type gpt2
bad "--config_name and --model_name_or_path both give the model's config" "${M[@]}" --config_name gpt2 --model_name_or_path "$tmp/clm"
bad "--config_name or --model_type with --model: pass one of them" "${M[@]}" --config_name gpt2 --model gpt2
bad "--config_name $tmp/none: neither a GPT-2 preset" "${M[@]}" --config_name "$tmp/none"
echo "run_clm's flags: taken where they have nothing to act on, --config_name and --model_type train from scratch, the Hub's refused"

[ $fail -eq 0 ] && rm -rf "$tmp"
exit $fail
