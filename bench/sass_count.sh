#!/usr/bin/env bash
# Static instruction counts of the low-bit optimizer kernels' common path (no GPU needed):
# builds src/kernels/cuda/lowbit_<kind>.cu for sm_90 with -DLT_SASS_MARKS (LT_SASS_MARK in lowbit.cuh
# becomes a NANOSLEEP that names a place), disassembles it with nvdisasm, and walks the path a warp of
# whole fp32 (or bf16) blocks takes (bench/sass_walk.py: the hot step, the branch-free code search, no slow path).
# Prints per kind: registers and spills, the instructions of the loop head (descriptor, hot check),
# the block step and the loop tail, per block and per element (one thread: 8 elements of its block),
# and warp instructions per element (the figure Nsight Compute's issued-instruction count gives when
# divided by the elements: 7.0 for bnb 8-bit AdamW on an H200 at ce969f5, bench/gpu-logs). kind/r64: the
# instantiation held to 64 registers (4 CTAs of 256 threads per SM instead of 3; the default since 2026-11-30,
# LT_LOWBIT_REGS=80 selects the other); kind/bf16: the
# step of bf16 parameters and gradients (pure bf16 training); kind/vote: the r64 instantiation's
# voted fp32 step (bnb8_adam; LT_LOWBIT_VOTE=1: square roots and divisions without their slow-path branches, one vote a
# block; entered at mark 29, its retry at 30 never taken).
# usage: bench/sass_count.sh [OUTDIR]    (NVDISASM=path overrides the search for nvdisasm)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/sass}
mkdir -p "$out"
command -v nvcc >/dev/null || { echo "sass_count: nvcc not found (install the CUDA toolkit)" >&2; exit 1; }
nvd=${NVDISASM:-$(command -v nvdisasm || true)}
if [ -z "$nvd" ]; then
    cuda_bin=$(dirname "$(realpath "$(command -v nvcc)")")
    [ -x "$cuda_bin/nvdisasm" ] && nvd=$cuda_bin/nvdisasm
fi
if [ -z "$nvd" ]; then
    cat >&2 <<'MSG'
sass_count: nvdisasm not found (this CUDA toolkit lacks it). Fetch NVIDIA's wheel and point NVDISASM at it:
  python3 -m pip download --no-deps nvidia-cuda-nvdisasm -d /tmp/nvd && (cd /tmp/nvd && unzip -q -o *.whl) &&
  NVDISASM=$(find /tmp/nvd -name nvdisasm -type f) bench/sass_count.sh
MSG
    exit 1
fi
chmod +x "$nvd" 2>/dev/null || true
printf '%-14s %5s %4s %5s %6s %5s %5s %5s %9s %8s %10s\n' kind block tpb regs spill head step tail per_block per_elem warp_per_el
# kind, enum value (cu_plan.h), threads per quantization block, block size
for spec in "bnb8_adam 10 32 256" "bnb8_lion 11 32 256" "ao8 12 32 256" "ao4 13 16 128"; do
    set -- $spec
    kind=$1 id=$2 tpb=$3 block=$4
    cubin=$out/lowbit_$kind.cubin
    nvcc -std=c++17 -Iinclude -Isrc -DLT_HAVE_CUDA -DLT_SASS_MARKS -gencode arch=compute_90,code=sm_90 -fmad=false \
        -Xptxas -v -cubin -o "$cubin" "src/kernels/cuda/lowbit_$kind.cu" 2> "$out/ptxas_$kind.txt"
    "$nvd" -c "$cubin" > "$out/lowbit_$kind.sass"
    # the instantiation of up to 80 registers (3 CTAs per SM; LT_LOWBIT_REGS=80) and the one of 64 (4 CTAs); the hot
    # step of fp32 parameters (marks 11-17, entered at 9) and of bf16 ones (21-27, at 19; default only)
    forms="3:f32 4:f32 3:bf16"
    [ "$kind" = bnb8_adam ] && forms="$forms 4:vote"
    for form in $forms; do
    minb=${form%%:*} dt=${form#*:} vote=0 avoid=
    case $dt in
        f32) o=10 enter=9 ;;
        bf16) o=20 enter=19 ;;
        vote) o=30 enter=29 vote=1 avoid=,-30 ;;
    esac
    k="q_kernelILi${id}ELi${tpb}ELi${minb}ELi${vote}E"
    info=$(grep -A2 "Function properties for .*$k" "$out/ptxas_$kind.txt" || true)
    spill=$(echo "$info" | sed -n 's/.* \([0-9]*\) bytes spill stores.*/\1/p' | head -1)
    regs=$(grep -A3 "Compiling entry function .*$k" "$out/ptxas_$kind.txt" | sed -n 's/.*Used \([0-9]*\) registers.*/\1/p' | head -1)
    walk() { python3 bench/sass_walk.py "$out/lowbit_$kind.sass" "$k" "$1" "$2" "$enter,10,$((o + 6))$avoid" > "$out/walk_${kind}_${minb}_${dt}_$1.txt"; sed -n 1p "$out/walk_${kind}_${minb}_${dt}_$1.txt"; }
    head=$(walk 8 $((o + 1))) step=$(walk $((o + 1)) $((o + 5))) tail=$(walk $((o + 5)) 8)
    head=${head%% *} tail=${tail%% *}
    case "$step" in *"$((o + 6)) $((o + 7)) $((o + 6)) $((o + 7))"*) ;; *) echo "sass_count: $kind $dt: the walk missed the fast search: $step" >&2; exit 1 ;; esac
    step=${step%% *}
    per=$((head + step + tail))
    per_el=$((block / tpb))
    name=$kind
    [ "$dt" = bf16 ] && name=$name/bf16
    [ $minb = 4 ] && [ "$dt" != vote ] && name=$name/r64
    [ "$dt" = vote ] && name=$name/vote
    awk -v k="$name" -v b="$block" -v t="$tpb" -v r="${regs:-?}" -v s="${spill:-?}" -v h="$head" -v st="$step" \
        -v tl="$tail" -v p="$per" -v e="$per_el" \
        'BEGIN { printf "%-14s %5d %4d %5s %6s %5d %5d %5d %9d %8.1f %10.2f\n", k, b, t, r, s, h, st, tl, p, p / e, p / e / 32 }'
    done
done
