#!/usr/bin/env bash
# `leantrain train` on run_clm's data against transformers' Trainer on the blocks run_clm.py's data path made
# (tests/data/runclm, scripts/make-runclm-reference.py: a tiny random GPT-2, the small tokenizer, block_size 32,
# 5% of the lines held out): evaluated as it is, eval_loss is the model's own mean loss over the validation
# blocks (GPT2LMHeadModel's, block_size - 1 positions a block) and eval_accuracy is the Trainer's; after one AdamW
# step on the first 4 training blocks (batch 4: every block in the one batch, whatever the sampler's order), the
# step's loss and grad_norm are the Trainer's over 31/32 (transformers 5.24's Trainer divides the summed loss by
# all 32 labels of a block, not the 31 positions it has: see the script), and eval_loss / eval_accuracy after the
# step match again; six steps over two epochs in the Trainer's order follow its loss curve. Then the flags: --data_layout's values, run_clm's layout refused for a token file,
# --keep_linebreaks false (run_clm's layout only); a resume keeps its checkpoint's layout.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
LT="$BUILD/leantrain"
fail=0
tmp=$(mktemp -d "${LT_TEST_TMP:-$BUILD/tmp}/runclm.XXXXXX")
d=tests/data/runclm
ref="$d/blocks.json"
# the k-th value of KEY in the reference's Trainer record (keys as json.dump writes them)
refv() { grep -o "\"$1\": [-0-9.e+]*" "$ref" | sed -n "${2:-1}p" | sed 's/.*: //'; }
# KEY's value in a JSON line or file of leantrain's (cJSON or log.jsonl)
getv() { grep -o "\"$1\":[[:space:]]*[-0-9.e+]*" "$2" | head -1 | sed 's/.*:[[:space:]]*//'; }
# close A B REL [SCALE]: |A * SCALE - B| <= REL * |B|
close() { awk -v a="$1" -v b="$2" -v r="$3" -v s="${4:-1}" \
    'BEGIN { d = a * s - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && b != "" && d <= r * m) }'; }
check() { # check WHAT GOT WANT REL [SCALE]
    if close "$2" "$3" "$4" "${5:-1}"; then echo "$1: $2 (reference $3${5:+, scaled by $5})"
    else echo "FAIL: $1: $2, reference $3 (scale ${5:-1}, tolerance $4 relative)"; fail=1; fi
}
common=(--model_name_or_path "$d/model" --tokenizer_name tests/data/tokenizer/small-tokenizer.json
        --train_file "$d/text.txt" --block_size 32 --per_device_eval_batch_size 8 --threads 2)

# the model as it is
"$LT" train "${common[@]}" --do_train false --do_eval --output_dir "$tmp/eval" > "$tmp/eval.log" 2>&1 ||
    { echo "FAIL: evaluation run:"; tail -5 "$tmp/eval.log"; fail=1; }
grep -q "64 validation blocks of 32 tokens (run_clm's layout" "$tmp/eval.log" ||
    { echo "FAIL: the data line does not say 64 blocks of 32 tokens in run_clm's layout:"; grep '^data' "$tmp/eval.log"; fail=1; }
check "eval_loss, the model as saved" "$(getv eval_loss "$tmp/eval/eval_results.json")" "$(refv model_loss 1)" 1e-5
check "eval_accuracy, the model as saved" "$(getv eval_accuracy "$tmp/eval/eval_results.json")" "$(refv eval_accuracy 1)" 1e-12

# one step on the first 4 training blocks, then the evaluation
"$LT" train "${common[@]}" --max_train_samples 4 --per_device_train_batch_size 4 --max_steps 1 --learning_rate 1e-2 \
    --weight_decay 0 --logging_steps 1 --do_eval --save_strategy no --output_dir "$tmp/step" > "$tmp/step.log" 2>&1 ||
    { echo "FAIL: training run:"; tail -5 "$tmp/step.log"; fail=1; }
first=$(head -1 "$tmp/step/log.jsonl" 2>/dev/null)
echo "$first" > "$tmp/first.json"
check "step 1 loss" "$(getv loss "$tmp/first.json")" "$(refv loss)" 1e-5 0.96875
check "step 1 grad_norm" "$(getv grad_norm "$tmp/first.json")" "$(refv grad_norm)" 1e-5 0.96875
check "eval_loss after the step" "$(getv eval_loss "$tmp/step/eval_results.json")" "$(refv model_loss 2)" 1e-5
check "eval_accuracy after the step" "$(getv eval_accuracy "$tmp/step/eval_results.json")" "$(refv eval_accuracy 2)" 1e-12

# six steps over two epochs of the first 24 blocks (batch 4 x accumulation 2, no clipping) in the Trainer's order
# (torch.randperm from seed + epoch, as its sampler draws it): every step's loss is the Trainer's over 31/32, and
# the validation loss after them the model's own
"$LT" train "${common[@]}" --max_train_samples 24 --per_device_train_batch_size 4 --gradient_accumulation_steps 2 \
    --num_train_epochs 2 --learning_rate 3e-3 --weight_decay 0 --max_grad_norm 0 --logging_steps 1 --do_eval \
    --eval_strategy no --save_strategy no --output_dir "$tmp/curve" > "$tmp/curve.log" 2>&1 ||
    { echo "FAIL: the six-step run:"; tail -5 "$tmp/curve.log"; fail=1; }
hf=$(grep -o '"losses": \[[^]]*\]' "$ref" | sed -n 1p | sed 's/.*\[//; s/\]//; s/,/ /g')
lt=$(grep -o '^{"loss":[-0-9.e+]*' "$tmp/curve/log.jsonl" 2>/dev/null | sed 's/.*://' | tr '\n' ' ')
[ "$(echo $hf | wc -w)" = 6 ] && [ "$(echo $lt | wc -w)" = 6 ] || { echo "FAIL: six losses expected: '$lt' / '$hf'"; fail=1; }
k=1
for h in $hf; do
    check "step $k loss in the Trainer's order" "$(echo $lt | cut -d' ' -f$k)" "$h" 1e-5 0.96875
    k=$((k + 1))
done
check "eval_loss after six steps" "$(getv eval_loss "$tmp/curve/eval_results.json")" "$(refv eval_model_loss)" 1e-5

# blocks that do not fill the last batch (the first 18, batch 4 x accumulation 3: batches of 4 4 4 4 2 an epoch):
# the Trainer keeps the short batch and ends the epoch's last step with it, 2 micro-batches instead of 3, its loss
# the mean over their 6 blocks (not the mean of the two batches' means): 2 steps an epoch, 6 in 3 epochs; each
# step's loss the Trainer's over 31/32, its logged epoch the Trainer's (batches done over batches in the epoch:
# 0.6 1 1.6 ...), num_input_tokens_seen 3 x 18 blocks of 32 tokens. With --dataloader_drop_last (the Trainer's)
# the short batch is left out: 4 batches an epoch, the second step of one, epochs 0.75 1 1.75 ...
# short_run NAME K DATA_LINE FLAGS...: the run against the reference's K-th short-batch record ("partial" 1,
# "drop_last" 2: losses K + 1, epochs K, eval_model_loss K + 1), its data line saying DATA_LINE
short_run() {
    local name=$1 k=$2 line=$3 i=1 h
    shift 3
    "$LT" train "${common[@]}" --max_train_samples 18 --per_device_train_batch_size 4 --gradient_accumulation_steps 3 \
        --num_train_epochs 3 --learning_rate 3e-3 --weight_decay 0 --max_grad_norm 0 --logging_steps 1 --do_eval \
        --eval_strategy no --save_strategy no "$@" --output_dir "$tmp/$name" > "$tmp/$name.log" 2>&1 ||
        { echo "FAIL: the $name run:"; tail -5 "$tmp/$name.log"; fail=1; }
    local hf he lt le
    hf=$(grep -o '"losses": \[[^]]*\]' "$ref" | sed -n "$((k + 1))p" | sed 's/.*\[//; s/\]//; s/,/ /g')
    he=$(grep -o '"epochs": \[[^]]*\]' "$ref" | sed -n "${k}p" | sed 's/.*\[//; s/\]//; s/,/ /g')
    lt=$(grep -o '^{"loss":[-0-9.e+]*' "$tmp/$name/log.jsonl" 2>/dev/null | sed 's/.*://' | tr '\n' ' ')
    le=$(grep '^{"loss"' "$tmp/$name/log.jsonl" 2>/dev/null | grep -o '"epoch":[-0-9.e+]*' | sed 's/.*://' | tr '\n' ' ')
    [ "$(echo $hf | wc -w)" = 6 ] && [ "$(echo $lt | wc -w)" = 6 ] && [ "$(echo $le | wc -w)" = 6 ] ||
        { echo "FAIL: $name: six losses and epochs expected: '$lt' / '$hf', '$le' / '$he'"; fail=1; }
    for h in $hf; do
        check "$name: step $i loss" "$(echo $lt | cut -d' ' -f$i)" "$h" 1e-5 0.96875
        check "$name: step $i epoch" "$(echo $le | cut -d' ' -f$i)" "$(echo $he | cut -d' ' -f$i)" 1e-12
        i=$((i + 1))
    done
    check "$name: eval_loss after six steps" "$(getv eval_loss "$tmp/$name/eval_results.json")" "$(refv eval_model_loss $((k + 1)))" 1e-5
    grep -q "batch 4 x 3 accumulation ($line); 6 steps" "$tmp/$name.log" ||
        { echo "FAIL: $name: the data line does not say '$line':"; grep '^data' "$tmp/$name.log"; fail=1; }
}
short_run short 1 "each epoch ends with a batch of 2, as the Trainer's" --include_num_input_tokens_seen all
check "short: num_input_tokens_seen" "$(grep -o '"num_input_tokens_seen":[0-9]*' "$tmp/short/log.jsonl" | tail -1 | sed 's/.*://')" 1728 0
short_run dropl 2 "each epoch leaves 2 blocks out: --dataloader_drop_last" --dataloader_drop_last
# fewer blocks than one batch: every epoch would be empty, refused before anything is written
out=$("$LT" train "${common[@]}" --max_train_samples 3 --per_device_train_batch_size 4 --max_steps 2 \
    --dataloader_drop_last true --output_dir "$tmp/dropbad" 2>&1) && { echo "FAIL: drop_last with 3 blocks of a batch of 4 was taken"; fail=1; }
echo "$out" | grep -q -- "--dataloader_drop_last: the 3 training blocks do not fill one batch of 4" && [ ! -e "$tmp/dropbad" ] ||
    { echo "FAIL: drop_last with too few blocks: $out"; fail=1; }

# ... and stopped after step 3 (mid-epoch: 12 of its 18 blocks drawn) and resumed, the same weights and log
S=("${common[@]}" --max_train_samples 18 --per_device_train_batch_size 4 --gradient_accumulation_steps 3
   --num_train_epochs 3 --learning_rate 3e-3 --logging_steps 1 --eval_strategy no --save_steps 3)
"$LT" train "${S[@]}" --output_dir "$tmp/sfull" > "$tmp/sfull.log" 2>&1 && mkdir -p "$tmp/sres" &&
    cp -r "$tmp/sfull/checkpoint-3" "$tmp/sres/" &&
    "$LT" train "${S[@]}" --output_dir "$tmp/sres" --resume_from_checkpoint latest > "$tmp/sres.log" 2>&1 &&
    cmp -s "$tmp/sfull/checkpoint-6/model.safetensors" "$tmp/sres/checkpoint-6/model.safetensors" &&
    [ "$(tail -3 "$tmp/sfull/log.jsonl" | sed 's/"tokens_per_s":[-0-9.e+]*//')" = \
      "$(tail -3 "$tmp/sres/log.jsonl" | sed 's/"tokens_per_s":[-0-9.e+]*//')" ] &&
    echo "short batches: resumed from step 3 of 6, the uninterrupted run's weights and log" ||
    { echo "FAIL: short batches: the run resumed from step 3 differs from the uninterrupted one"; tail -3 "$tmp/sres.log"; fail=1; }

# --data_layout stream on the same text: one token stream, 32 positions a row (the data line says so)
"$LT" train "${common[@]}" --data_layout stream --do_train false --do_eval --output_dir "$tmp/stream" > "$tmp/stream.log" 2>&1 &&
    grep -q "validation blocks of 32 tokens (one token stream" "$tmp/stream.log" ||
    { echo "FAIL: --data_layout stream:"; tail -3 "$tmp/stream.log"; fail=1; }
# refusals
out=$("$LT" train "${common[@]}" --data_layout lines --output_dir "$tmp/bad1" 2>&1) &&
    { echo "FAIL: --data_layout lines was taken"; fail=1; }
echo "$out" | grep -q -- "--data_layout must be auto, run_clm or stream" || { echo "FAIL: --data_layout lines: $out"; fail=1; }
"$LT" tokenize --tokenizer_name_or_path tests/data/tokenizer/small-tokenizer.json --input "$d/validation.txt" --output "$tmp/val.bin" > /dev/null 2>&1 ||
    { echo "FAIL: tokenize"; fail=1; }
out=$("$LT" train "${common[@]}" --train_file "$tmp/val.bin" --data_layout run_clm --output_dir "$tmp/bad2" 2>&1) &&
    { echo "FAIL: run_clm's layout was taken for a token file"; fail=1; }
echo "$out" | grep -q "is an llm.c token file: it has no lines" && [ ! -e "$tmp/bad2" ] ||
    { echo "FAIL: run_clm's layout on a token file: $out"; fail=1; }
out=$("$LT" train "${common[@]}" --keep_linebreaks false --data_layout stream --output_dir "$tmp/bad3" 2>&1) &&
    { echo "FAIL: --keep_linebreaks false was taken with the stream layout"; fail=1; }
echo "$out" | grep -q -- "--keep_linebreaks false drops each line's line break, which needs run_clm's layout" ||
    { echo "FAIL: --keep_linebreaks false with --data_layout stream: $out"; fail=1; }
# keep_linebreaks false: the lines without their LF (fewer tokens: fewer blocks than the 64 above)
"$LT" train "${common[@]}" --keep_linebreaks False --do_train false --do_eval --output_dir "$tmp/nolf" > "$tmp/nolf.log" 2>&1 &&
    grep -q "^data: [0-9]* validation blocks" "$tmp/nolf.log" && ! grep -q "^data: 64 validation" "$tmp/nolf.log" ||
    { echo "FAIL: --keep_linebreaks False:"; tail -3 "$tmp/nolf.log"; fail=1; }
# a resume reads the data in its checkpoint's layout (trainer_state.json's data_layout): another one asked for is
# refused; a checkpoint without the field (older than the flag) resumes in the stream layout, its layout then
R=("${common[@]}" --per_device_train_batch_size 4 --max_steps 3 --save_steps 2 --eval_strategy no --output_dir "$tmp/res")
"$LT" train "${R[@]}" --max_steps 2 > "$tmp/res.log" 2>&1 && grep -q '"data_layout":[[:space:]]*"run_clm"' "$tmp/res/checkpoint-2/trainer_state.json" ||
    { echo "FAIL: trainer_state.json does not record the run_clm layout"; tail -3 "$tmp/res.log"; fail=1; }
out=$("$LT" train "${R[@]}" --resume_from_checkpoint latest --data_layout stream 2>&1) &&
    { echo "FAIL: a resume in another layout was taken"; fail=1; }
echo "$out" | grep -q "the checkpoint's run read its data in the run_clm layout" || { echo "FAIL: layout change on resume: $out"; fail=1; }
sed -i '/"data_layout"/d' "$tmp/res/checkpoint-2/trainer_state.json"
"$LT" train "${R[@]}" --resume_from_checkpoint latest > "$tmp/res2.log" 2>&1 && grep -q "(one token stream" "$tmp/res2.log" ||
    { echo "FAIL: an older checkpoint does not resume in the stream layout:"; tail -3 "$tmp/res2.log"; fail=1; }
# the token file with auto: the stream layout
"$LT" train "${common[@]}" --train_file "$tmp/val.bin" --do_train false --do_eval --output_dir "$tmp/tok" > "$tmp/tok.log" 2>&1 &&
    grep -q "(one token stream" "$tmp/tok.log" || { echo "FAIL: a token file with --data_layout auto:"; tail -3 "$tmp/tok.log"; fail=1; }

[ $fail = 0 ] && rm -rf "$tmp"
[ $fail = 0 ] && echo "runclm: ok" || echo "runclm: FAILED"
exit $fail
