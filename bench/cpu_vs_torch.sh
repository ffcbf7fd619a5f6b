#!/usr/bin/env bash
# GPT-2 training on the CPU, leantrain against PyTorch eager on the same machine in the same minutes:
#   bench/cpu_vs_torch.sh [BUILD (build)] [ROUNDS (2)]
# Three method sets, as scripts/gpu-check's training section pairs them (bench/torch_gpt2_train.py documents the
# PyTorch side):
#   a  fp32, AdamW, clipping 1.0          (leantrain --optim adamw_torch; torch AdamW(fused=True))
#   b  bf16 + gradient checkpointing + 8-bit AdamW, clipping 1.0
#                                         (leantrain --bf16 --gradient_checkpointing --optim adamw_bnb_8bit; torch
#                                          bf16 autocast + checkpointing + bitsandbytes AdamW8bit, or torch's AdamW
#                                          standing in where bitsandbytes is missing, as on CPU-only machines)
#   c  pure bf16 weights + checkpointing + the step inside backward, no clipping
#                                         (leantrain --pure_bf16 --optim adamw_torch_4bit with stochastic rounding
#                                          --optim_in_backward; torch: the model in bf16, per-parameter AdamW stepped by
#                                          post-accumulate-grad hooks)
# GPT-2 124M (12 x 768, vocab 50257, no dropout), batch BATCH (1) x SEQ (256), STEPS (5) steps: tokens/s over the
# steps after the first two (leantrain: the mean of its per-step log lines 3..STEPS; torch: the wall time of steps
# 3..STEPS). Peak memory: each run's peak resident set (GNU time's %M), a process of its own per set; PyTorch's
# includes the interpreter and the libraries (torch_base_MiB: python importing torch and transformers, nothing
# else), leantrain's its program. The two sides and the sets alternate; each round's numbers are printed, then a
# table of the medians (the lower middle value for an even count). Needs python3 with torch and transformers; says
# so and exits 0 without them.
set -u
BUILD=${1:-build}
ROUNDS=${2:-2}
SEQ=${SEQ:-256}
BATCH=${BATCH:-1}
STEPS=${STEPS:-5}
LT=$BUILD/leantrain
cd "$(dirname "$0")/.."
[ -x "$LT" ] || { echo "cpu_vs_torch: $LT not built (run make)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "cpu_vs_torch: needs GNU time: apt-get install -y time" >&2; exit 1; }
python3 -c 'import torch, transformers' 2>/dev/null || { echo "cpu_vs_torch: python3 lacks torch or transformers: nothing to compare"; exit 0; }
make -s "$BUILD/data/stories.txt" BUILD="$BUILD" >/dev/null || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A LTF=(
    [a]="--optim adamw_torch"
    [b]="--optim adamw_bnb_8bit --gradient_checkpointing --bf16"
    [c]="--optim adamw_torch_4bit --gradient_checkpointing --pure_bf16 --optim_args bf16_stochastic_round=True --optim_in_backward --max_grad_norm 0"
)
rss_mib() { awk '/^maxrss_kb/ { printf "%.0f", $2 / 1024 }' "$1"; }

base=$(/usr/bin/time -f "maxrss_kb %M" python3 -c 'import torch, transformers' 2>&1 | awk '/^maxrss_kb/ { printf "%.0f", $2 / 1024 }')
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(git rev-parse --short HEAD 2>/dev/null)"
echo "# GPT-2 124M, batch $BATCH x $SEQ, $STEPS steps (tokens/s of steps 3-$STEPS); torch_base_MiB $base"
echo "# $(python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "threads", torch.get_num_threads())' 2>/dev/null)"
for r in $(seq 1 "$ROUNDS"); do
    for s in a b c; do
        # shellcheck disable=SC2086
        /usr/bin/time -f "maxrss_kb %M" "$LT" train --model gpt2 --train_file "$BUILD/data/stories.txt" --data_layout stream \
            --block_size "$SEQ" --per_device_train_batch_size "$BATCH" --max_steps "$STEPS" --logging_steps 1 \
            --eval_steps 0 --save_strategy no --learning_rate 1e-4 --seed 1 --output_dir "$tmp/out" ${LTF[$s]} \
            > "$tmp/lt.log" 2>&1 || { echo "round $r set $s: leantrain failed: $(tail -1 "$tmp/lt.log")"; continue; }
        lt_tps=$(awk '/^step [0-9]+\// { split($2, a, "/"); if (a[1] >= 3) { s += $NF; n++ } } END { if (n) printf "%.0f", s / n }' "$tmp/lt.log")
        lt_rss=$(rss_mib "$tmp/lt.log")
        bf=$(sed -n 's/^bf16 products: //p' "$tmp/lt.log")
        /usr/bin/time -f "maxrss_kb %M" python3 bench/torch_gpt2_train.py --device cpu --seq "$SEQ" --batch "$BATCH" \
            --steps "$STEPS" --warmup 2 --sets "$s" > "$tmp/pt.log" 2>&1
        pt_tps=$(sed -n "s/^torch-gpt2 set=$s tokens_per_s=\([0-9]*\).*/\1/p" "$tmp/pt.log")
        pt_rss=$(rss_mib "$tmp/pt.log")
        [ -n "$pt_tps" ] || echo "round $r set $s: torch: $(grep "set=$s" "$tmp/pt.log" | head -1)"
        echo "round $r set $s: leantrain ${lt_tps:-?} tokens/s, ${lt_rss:-?} MiB${bf:+ (bf16 products: $bf)}; torch ${pt_tps:-?} tokens/s, ${pt_rss:-?} MiB"
        echo "$s ${lt_tps:-0} ${lt_rss:-0} ${pt_tps:-0} ${pt_rss:-0}" >> "$tmp/rows"
    done
done
echo
printf "%-4s %14s %13s %8s %14s %13s %10s\n" set lt_tokens_s torch_tokens_s vs_torch lt_peak_MiB torch_peak_MiB mem_ratio
for s in a b c; do
    awk -v s="$s" '$1 == s { n++; lt[n] = $2; lr[n] = $3; pt[n] = $4; pr[n] = $5 }
        function med(v, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
                                       return v[int((n + 1) / 2)] }
        END { if (!n) exit; a = med(lt, n); b = med(pt, n); c = med(lr, n); d = med(pr, n)
              r1 = (b > 0) ? sprintf("%.2f", a / b) : "na"; r2 = (d > 0) ? sprintf("%.2f", c / d) : "na"
              printf "%-4s %14.0f %13.0f %8s %14.0f %13.0f %10s\n", s, a, b, r1, c, d, r2 }' "$tmp/rows"
done
echo "# vs_torch: leantrain's tokens/s over PyTorch's (> 1 faster); mem_ratio: leantrain's peak RSS over PyTorch's (< 1 smaller)"
