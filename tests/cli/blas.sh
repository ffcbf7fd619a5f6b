#!/usr/bin/env bash
# The OpenBLAS kernels leantrain runs on: never OpenBLAS's SSE3 fallback ("Prescott") on a CPU with AVX2 or
# AVX-512 (Debian 12's OpenBLAS falls back to it on CPU models it does not know, such as Emerald Rapids; the
# program then re-executes itself with OPENBLAS_CORETYPE set), with the run's own arguments intact; a
# user's OPENBLAS_CORETYPE, even "Prescott", is kept.
set -u
BUILD=${BUILD:-build}
LT="$BUILD/leantrain"
tmp=$(mktemp -d "${LT_TEST_TMP:-build/tmp}/blas.XXXXXX") || exit 1
fail=0
cc -std=c11 -O2 -o "$tmp/gen_corpus" scripts/gen_corpus.c || exit 1
"$tmp/gen_corpus" "$tmp/text.txt" 20000 || exit 1
RUN=(train --train_file "$tmp/text.txt" --n_layer 1 --n_embd 32 --n_head 2 --n_positions 32 --block_size 32
     --per_device_train_batch_size 2 --max_steps 3 --logging_steps 3 --save_strategy no --seed 5
     --output_dir "$tmp/out")

# the core named on the "data:" line of a run with OPENBLAS_CORETYPE as given ("-": unset)
core_of() {
    local log="$tmp/run-$1.log"
    if [ "$1" = - ]; then env -u OPENBLAS_CORETYPE "$LT" "${RUN[@]}" > "$log" 2>&1
    else OPENBLAS_CORETYPE="$1" "$LT" "${RUN[@]}" > "$log" 2>&1; fi || { echo "run with OPENBLAS_CORETYPE=$1 failed"; cat "$log"; return 1; }
    grep -q '; 3 steps (0 warmup)' "$log" || { echo "OPENBLAS_CORETYPE=$1: the run's arguments were not kept"; cat "$log"; return 1; }
    sed -n 's/^data: .*(OpenBLAS \([A-Za-z0-9]*\)).*/\1/p' "$log"
}

flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }
core=$(core_of -) || fail=1
echo "default: OpenBLAS $core"
[ -n "$core" ] || { echo "no OpenBLAS core on the data line"; fail=1; }
if has avx2 || has avx512f; then
    [ "$core" != Prescott ] || { echo "the CPU has AVX2/AVX-512 but OpenBLAS runs its Prescott (SSE3) kernels"; fail=1; }
else
    echo "this CPU has neither AVX2 nor AVX-512: any core is right"
fi
wants=(Prescott)
has avx2 && has fma && wants+=(Haswell)
for want in "${wants[@]}"; do
    got=$(core_of "$want") || fail=1
    if [ "$got" = "$want" ]; then echo "OPENBLAS_CORETYPE=$want kept"
    else echo "OPENBLAS_CORETYPE=$want: the run used '$got'"; fail=1; fi
done

rm -rf "$tmp"
exit $fail
