#!/usr/bin/env bash
# What dropout costs on the CPU, and what it does to the loss: one small GPT-2 (4 layers, 256 wide, T 512: the
# attention's probabilities, every one of which draws a Philox word, outnumber the matrix multiplies' outputs)
# trained ROUNDS x 2 times for 16 steps, alternately without dropout and with 0.1 at every site, so that the
# machine's drift hits both alike. Prints each run's tokens/s (steps 9-16) and final training loss, the median
# tokens/s of each, and their ratio (dropout / none, measured in this run).
# usage: bench/dropout.sh [BUILD_DIR] [ROUNDS]   (run from the repository root after `make`)
set -u
BUILD=${BUILD:-${1:-build}}
ROUNDS=${2:-3}
LT="$BUILD/leantrain"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$BUILD/gen_corpus" ] || make --no-print-directory "$BUILD/gen_corpus" >/dev/null
"$BUILD/gen_corpus" "$tmp/text.txt" 2000000 > /dev/null
COMMON=(--train_file "$tmp/text.txt" --n_layer 4 --n_embd 256 --n_head 4 --n_positions 512 --block_size 512
        --per_device_train_batch_size 4 --max_steps 16 --logging_steps 8 --eval_steps 0 --save_strategy no
        --device cpu --seed 5)
DROP=(--config_overrides "embd_pdrop=0.1,resid_pdrop=0.1,attn_pdrop=0.1")
: > "$tmp/none" && : > "$tmp/drop"
for r in $(seq "$ROUNDS"); do
    for kind in none drop; do
        extra=(); [ "$kind" = drop ] && extra=("${DROP[@]}")
        rm -rf "$tmp/out"
        "$LT" train "${COMMON[@]}" "${extra[@]}" --output_dir "$tmp/out" > "$tmp/log" 2>&1 || { echo "$kind: failed"; tail -3 "$tmp/log"; exit 1; }
        tps=$(grep -o '"tokens_per_s":[0-9.]*' "$tmp/out/log.jsonl" | tail -1 | cut -d: -f2)
        loss=$(grep -o '"loss":[0-9.]*' "$tmp/out/log.jsonl" | tail -1 | cut -d: -f2)
        printf 'round %d %-5s tokens/s %8.0f  loss %.4f\n' "$r" "$kind" "$tps" "$loss"
        echo "$tps" >> "$tmp/$kind"
    done
done
med() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mn=$(med "$tmp/none"); md=$(med "$tmp/drop")
awk -v a="$mn" -v b="$md" 'BEGIN { printf "median tokens/s: none %.0f, dropout 0.1 %.0f; ratio %.3f\n", a, b, b / a }'
