#!/usr/bin/env bash
# tests/gpu/kernel_forms.sh LEANTRAIN: a training run on the GPU (the CUDA emulation; `make cuda-emu` runs this with
# build/emu/leantrain) reports, after its memory table, the form each tunable optimizer kernel chose by timing its
# first launches (lt_optim_device_tuning): one "kernel form:" line per launch shape, every one chosen by the end of
# 20 steps (each shape times its up to 5 forms 3 times); LT_TUNE=0 keeps the defaults and reports nothing; a CPU run
# has no such line.
set -u
LEANTRAIN=${1:?usage: tests/gpu/kernel_forms.sh LEANTRAIN}
source tests/cli/lib/train_common.bash forms 20000 # $tmp, fail, $tmp/text.txt
LT=$LEANTRAIN
SMALL=(--train_file "$tmp/text.txt" --n_layer 1 --n_embd 32 --n_head 2 --n_positions 16 --block_size 16
       --per_device_train_batch_size 2 --max_steps 20 --logging_steps 10 --eval_steps 0 --save_strategy no)
for o in "adamw_bnb_8bit bitsandbytes 8-bit AdamW" "adamw_torch_4bit torchao 4-bit AdamW" "adafactor Adafactor row pass"; do
    set -- $o; optim=$1; shift; kind="$*"
    args=("${SMALL[@]}" --optim "$optim")
    [ "$optim" = adamw_bnb_8bit ] && args+=(--optim_args min_8bit_size=0)
    "$LT" train "${args[@]}" --device cuda --output_dir "$tmp/$optim" > "$tmp/$optim.log" 2>&1 ||
        { echo "$optim: the run failed"; tail -5 "$tmp/$optim.log"; fail=1; continue; }
    grep -q "^kernel form: $kind, .* units: [a-z0-9/]* (best times: " "$tmp/$optim.log" &&
        ! grep -q "^kernel form: .*: choosing" "$tmp/$optim.log" ||
        { echo "$optim: no chosen '$kind' form reported"; grep -A9 '^memory' "$tmp/$optim.log"; fail=1; }
    LT_TUNE=0 "$LT" train "${args[@]}" --device cuda --output_dir "$tmp/$optim-fixed" > "$tmp/$optim-fixed.log" 2>&1 &&
        ! grep -q "^kernel form:" "$tmp/$optim-fixed.log" || { echo "$optim: LT_TUNE=0 still reports forms"; fail=1; }
done
"$LT" train "${SMALL[@]}" --optim adamw_bnb_8bit --device cpu --output_dir "$tmp/cpu" > "$tmp/cpu.log" 2>&1 &&
    ! grep -q "^kernel form:" "$tmp/cpu.log" || { echo "a CPU run reports kernel forms"; fail=1; }
[ $fail -eq 0 ] && echo "kernel_forms: each tunable kernel's chosen form reported after the run (none with LT_TUNE=0 or on the CPU)" && rm -rf "$tmp"
exit $fail
