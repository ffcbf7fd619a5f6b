#!/usr/bin/env bash
# How far pure bf16 weights (no fp32 master) stay from fp32 master weights: one small GPT-2 trained 300 steps
# on the generated story corpus with bf16 compute and (a) fp32 master weights, (b) pure bf16 with round-to-
# nearest updates, (c) pure bf16 with stochastic rounding, (d) pure bf16 with AnyPrecisionAdamW's Kahan buffer;
# plus the fp32-compute run for scale. Prints the eval loss every 50 steps and each run's gap to (a).
# usage: bench/pure_bf16.sh [BUILD_DIR]   (run from the repository root after `make`)
set -u
BUILD=${BUILD:-${1:-build}}
LT="$BUILD/leantrain"
tmp=$(mktemp -d)
[ -x "$BUILD/gen_corpus" ] || make --no-print-directory "$BUILD/gen_corpus" >/dev/null
"$BUILD/gen_corpus" "$tmp/text.txt" 2000000 > /dev/null
COMMON=(--train_file "$tmp/text.txt" --n_layer 4 --n_embd 128 --n_head 4 --n_positions 128 --block_size 128
        --per_device_train_batch_size 16 --max_steps 300 --learning_rate 2e-3 --warmup_steps 20
        --lr_scheduler_type cosine --weight_decay 0.1 --logging_steps 50 --eval_steps 50 --eval_max_batches 16
        --save_steps 0 --seed 7 --optim adamw_torch)
names=("fp32 compute" "bf16, fp32 master" "pure bf16, nearest" "pure bf16, stochastic rounding"
       "pure bf16, Kahan (anyprecision)")
flags=("" "--bf16" "--pure_bf16" "--pure_bf16 --optim_args bf16_stochastic_round=True"
       "--pure_bf16 --optim adamw_anyprecision --optim_args use_kahan_summation=True")
for i in "${!names[@]}"; do
    # shellcheck disable=SC2086
    "$LT" train "${COMMON[@]}" ${flags[$i]} --output_dir "$tmp/r$i" > "$tmp/r$i.log" 2>&1 || { echo "${names[$i]}: failed"; tail -3 "$tmp/r$i.log"; }
    grep -o '"eval_loss":[0-9.e+-]*' "$tmp/r$i/log.jsonl" | cut -d: -f2 > "$tmp/e$i"
done
printf '%-34s' "eval loss at step"; for s in 50 100 150 200 250 300; do printf '%8s' "$s"; done; printf '%12s\n' "gap at 300"
for i in "${!names[@]}"; do
    printf '%-34s' "${names[$i]}"
    while read -r v; do printf '%8.4f' "$v"; done < "$tmp/e$i"
    paste "$tmp/e$i" "$tmp/e1" | tail -1 | awk '{ printf "%+12.4f\n", $1 - $2 }'
done
rm -rf "$tmp"
