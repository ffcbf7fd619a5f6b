#!/usr/bin/env bash
# tests/gpu/old_gpu.sh LEANTRAIN: on a GPU older than compute capability 8.0 (played by the CUDA emulation with
# LT_EMU_CC=75, a T4; `make cuda-emu` runs this with build/emu/leantrain), where none of the kernels could
# launch: --device cuda is refused in one line that names the device and says to use --device cpu, with no output
# folder; --device auto trains on the CPU; bench optim --device cuda says why there is no device.
set -u
LEANTRAIN=${1:?usage: tests/gpu/old_gpu.sh LEANTRAIN}
source tests/cli/lib/train_common.bash oldgpu 20000 # $tmp, fail, $tmp/text.txt
LT=$LEANTRAIN
SMALL=(--train_file "$tmp/text.txt" --n_layer 1 --n_embd 32 --n_head 2 --n_positions 16 --block_size 16
       --per_device_train_batch_size 2 --max_steps 2 --logging_steps 1 --eval_steps 0 --save_strategy no)
export LT_EMU_CC=75
if "$LT" train "${SMALL[@]}" --device cuda --output_dir "$tmp/cuda" > "$tmp/cuda.log" 2>&1; then
    echo "--device cuda on compute capability 7.5 was not refused"; fail=1
else
    grep -q 'compute capability 7\.5.*need 8\.0 or later.*--device cpu' "$tmp/cuda.log" ||
        { echo "--device cuda on 7.5: no clear reason:"; cat "$tmp/cuda.log"; fail=1; }
    [ -e "$tmp/cuda" ] && { echo "--device cuda on 7.5 left an output folder"; fail=1; }
fi
if "$LT" train "${SMALL[@]}" --device auto --output_dir "$tmp/auto" > "$tmp/auto.log" 2>&1; then
    { grep -q '(OpenBLAS ' "$tmp/auto.log" && ! grep -q '^device: cuda' "$tmp/auto.log"; } ||
        { echo "--device auto on 7.5: trained, but not on the CPU:"; head -20 "$tmp/auto.log"; fail=1; }
else
    echo "--device auto on compute capability 7.5 failed instead of training on the CPU:"; tail -5 "$tmp/auto.log"; fail=1
fi
if "$LT" bench optim --device cuda --optim sgd --params 0.01 --steps 1 > "$tmp/bench.log" 2>&1; then
    echo "bench optim --device cuda on 7.5 ran"; fail=1
else
    grep -q 'cc 7\.5.*need compute capability 8\.0 or later' "$tmp/bench.log" ||
        { echo "bench optim --device cuda on 7.5: no clear reason:"; cat "$tmp/bench.log"; fail=1; }
fi
[ $fail -eq 0 ] && echo "old_gpu: compute capability 7.5 refused with its reason; --device auto trains on the CPU" && rm -rf "$tmp"
exit $fail
