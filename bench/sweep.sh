#!/usr/bin/env bash
# The memory-methods sweep: one model trained a few steps with each method set; peak memory (RSS) measured
# and predicted side by side, and tokens/s. Writes bench/sweep.tsv and, when gnuplot is installed
# (apt-get install gnuplot-nox), bench/sweep.png.
# usage: bench/sweep.sh [BUILD_DIR]   (run from the repository root after `make`)
#        bench/sweep.sh --plot-only     (redraw bench/sweep.png from bench/sweep.tsv)
set -u
out=bench/sweep.tsv
plot() {
    if ! command -v gnuplot >/dev/null 2>&1; then
        echo "gnuplot is not installed: no chart (apt-get install gnuplot-nox)"; return
    fi
    gnuplot <<GP
set terminal pngcairo size 1100,520 noenhanced
set output 'bench/sweep.png'
set datafile separator '\t'
set style data histograms
set style fill solid 0.8
set yrange [0:*]
set ylabel 'peak memory, MiB'
set xtics rotate by -25
set key top right
set title 'leantrain memory sweep: predicted vs measured peak RSS (GPT-2 6 x 384, 10.7M params, batch 8 x 256, CPU)'
plot '$out' every ::1 using 2:xtic(1) title 'predicted', '' every ::1 using 3 title 'measured'
GP
    echo "chart: bench/sweep.png"
}
if [ "${1:-}" = --plot-only ]; then plot; exit 0; fi
BUILD=${1:-build}
LT="$BUILD/leantrain"
tmp=$(mktemp -d)
[ -x "$BUILD/gen_corpus" ] || make --no-print-directory "$BUILD/gen_corpus" >/dev/null
"$BUILD/gen_corpus" "$tmp/text.txt" 2000000
MODEL=(--n_layer 6 --n_embd 384 --n_head 6 --n_positions 256 --block_size 256)
COMMON=(--train_file "$tmp/text.txt" "${MODEL[@]}" --max_steps 4 --logging_steps 4 --save_steps 0 --eval_steps 0
        --learning_rate 1e-3 --output_dir "$tmp/out")
printf 'config\tpredicted_MiB\tmeasured_MiB\terror_pct\ttokens_per_s\n' > "$out"
run() { # label, extra flags...
    local label="$1"; shift
    rm -rf "$tmp/out"
    log=$("$LT" train "${COMMON[@]}" "$@" 2>&1) || { echo "$label: failed: $(echo "$log" | tail -1)"; return; }
    line=$(echo "$log" | grep 'measured peak')
    pred=$(echo "$line" | sed -n 's/.*total \([0-9.]*\).*/\1/p')
    meas=$(echo "$line" | sed -n 's/.*measured peak \([0-9.]*\).*/\1/p')
    pct=$(echo "$line" | sed -n 's/.*measured peak [0-9.]* (\([-+][0-9.]*\)%).*/\1/p')
    tps=$(echo "$log" | grep 'tokens/s' | tail -1 | sed -n 's/.*tokens\/s \([0-9]*\).*/\1/p')
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$pred" "$meas" "$pct" "$tps" | tee -a "$out"
}
run "fp32 AdamW, batch 8" --per_device_train_batch_size 8 --optim adamw_torch
run "+ accumulation (4 x 2)" --per_device_train_batch_size 2 --gradient_accumulation_steps 4 --optim adamw_torch
run "+ checkpointing" --per_device_train_batch_size 8 --optim adamw_torch --gradient_checkpointing
run "+ bf16" --per_device_train_batch_size 8 --optim adamw_torch --bf16
run "+ fp16" --per_device_train_batch_size 8 --optim adamw_torch --fp16
run "+ pure bf16 (SR)" --per_device_train_batch_size 8 --optim adamw_torch --pure_bf16 \
    --optim_args bf16_stochastic_round=True
run "+ adafactor" --per_device_train_batch_size 8 --optim adafactor
run "+ adamw_bnb_8bit" --per_device_train_batch_size 8 --optim adamw_bnb_8bit
run "+ adamw_torch_8bit" --per_device_train_batch_size 8 --optim adamw_torch_8bit
run "+ adamw_torch_4bit" --per_device_train_batch_size 8 --optim adamw_torch_4bit
run "+ lion_8bit" --per_device_train_batch_size 8 --optim lion_8bit
run "+ optim in backward" --per_device_train_batch_size 8 --optim adamw_torch --optim_in_backward --max_grad_norm 0
run "all together" --per_device_train_batch_size 2 --optim adamw_torch_4bit --gradient_checkpointing \
    --optim_in_backward --max_grad_norm 0 --pure_bf16 --optim_args bf16_stochastic_round=True
plot
rm -rf "$tmp"
