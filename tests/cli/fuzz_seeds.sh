#!/usr/bin/env bash
# The fuzz targets' committed corpora (fuzz/corpus*), replayed through each target built with gcc and fuzz/replay.c
# instead of libFuzzer (make builds them into $BUILD/fuzz-replay): every seed must run without a crash or a broken
# invariant (a target's EXPECT traps), and fuzz_args' flag seeds must get past the parser to its checks (its flags
# mode once handed the parser an argument it refuses, so that no seed reached them and nothing noticed).
set -u
BUILD=${BUILD:-build}
R="$BUILD/fuzz-replay"
fail=0
replay() { # target, corpus: prints the driver's line; 1 when the replay failed
    local out rc
    out=$("$R/$1" "$2" 2>&1); rc=$?
    echo "$1 $2: ${out##*$'\n'}"
    [ $rc -eq 0 ] || { echo "$1: the replay of $2 failed (exit $rc)"; echo "$out" | tail -20; return 1; }
}
replay fuzz_safetensors fuzz/corpus || fail=1
replay fuzz_optim_state fuzz/corpus-optim || fail=1
replay fuzz_tokenizer_files fuzz/corpus-tokenizer || fail=1
line=$(replay fuzz_args fuzz/corpus-args) || fail=1
echo "$line"
reached=$(echo "$line" | sed -n 's/.*, \([0-9]*\) reached the target.s checks.*/\1/p')
[ "${reached:-0}" -ge 50 ] ||
    { echo "fuzz_args: ${reached:-no} seeds of fuzz/corpus-args reached its checks (expected 50 or more)"; fail=1; }
exit $fail
