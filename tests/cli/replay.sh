#!/usr/bin/env bash
# Every optim-trace-1 reference trace passes `leantrain replay`, one PASS line
# each, exit 0; a trace whose recorded values were altered FAILs with exit 1.
set -u
BUILD=${BUILD:-build}
LT="$BUILD/leantrain"
tmp=${LT_TEST_TMP:-$BUILD/tmp}
fail=0
traces=$(grep -l 'optim-trace-1' tests/data/golden/*.safetensors)
n=$(echo "$traces" | wc -l)
[ "$n" -ge 13 ] || { echo "expected at least 13 optim traces, found $n"; exit 1; }
out=$("$LT" replay $traces); rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "replay exited $rc"; fail=1; }
[ "$(echo "$out" | grep -c '^PASS ')" -eq "$n" ] || { echo "not every trace printed PASS"; fail=1; }
echo "$out" | grep -q '^FAIL' && { echo "a FAIL line"; fail=1; }

# more traces, written by torch 2.15 / transformers 5.24 (scripts/make-optim-traces.py): other shapes (4-D, a
# single row), seeds and hyperparameters (dampening, centered RMSprop with momentum, Adagrad's lr_decay,
# AMSGrad with groups and a schedule, Adafactor with every option)
n2=$(ls tests/data/torch2/*.safetensors | wc -l)
out=$("$LT" replay tests/data/torch2/*.safetensors); rc=$?
echo "$out"
[ $rc -eq 0 ] && [ "$(echo "$out" | grep -c '^PASS ')" -eq "$n2" ] && [ "$n2" -ge 8 ] || { echo "torch2 traces did not all pass"; fail=1; }

# GPT-2 traces written by the real Hugging Face GPT2LMHeadModel at other sizes and seeds
# (scripts/make-gpt2-trace.py): logits, loss, every gradient, 5 AdamW steps; one of them with dropout (embd 0.1,
# resid 0.2, attn 0.3; transformers' dropout calls drawing leantrain's masks: `--dropout=0.1,0.2,0.3,4242`, sizes
# 2 48 4 97 40 2 19, seed 11), which replay follows ([dropout] on its line)
out=$("$LT" replay tests/data/gpt2/*.safetensors); rc=$?
echo "$out"
[ $rc -eq 0 ] && [ "$(echo "$out" | grep -c '^PASS ')" -eq 3 ] &&
    echo "$out" | grep -q '^PASS  tests/data/gpt2/hf_dropout_2x48_seed11.safetensors .*\[dropout\]' ||
    { echo "HF GPT-2 traces did not all pass"; fail=1; }

# traces written by the real torchao AdamW8bit / AdamW4bit (scripts/make-lowbit-traces.py). torchao runs its
# step through torch.compile, whose fused kernels round a few ulps differently, and a 1-ulp difference can move a
# value to the neighbouring code: the trace's tolerance (1e-4) is 2.5x the largest error measured (4.2e-5).
out=$("$LT" replay tests/data/lowbit/*.safetensors); rc=$?
echo "$out"
[ $rc -eq 0 ] && [ "$(echo "$out" | grep -c '^PASS ')" -eq 4 ] || { echo "torchao traces did not all pass"; fail=1; }
# and through the scalar kernels, which CPUs without AVX-512 run (test_lowbit compares the two paths byte for byte)
out=$(LT_LOWBIT_SCALAR=1 "$LT" replay tests/data/lowbit/*.safetensors); rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | grep -c '^PASS ')" -eq 4 ] || { echo "torchao traces did not all pass on the scalar path"; echo "$out"; fail=1; }

# the GPT-2 trace (gpt2-trace-1): forward, gradients and AdamW training losses, one PASS line
out=$("$LT" replay tests/data/golden/gpt2_tiny.safetensors); rc=$?
echo "$out"
[ $rc -eq 0 ] && echo "$out" | grep -q '^PASS  tests/data/golden/gpt2_tiny.safetensors  worst ' &&
    [ "$(echo "$out" | wc -l)" -eq 1 ] || { echo "gpt2 trace did not PASS (rc=$rc)"; fail=1; }
# altered weights (the last 64 bytes are the end of wte.weight) make it FAIL, exit 1
cp tests/data/golden/gpt2_tiny.safetensors "$tmp/gpt2_altered.safetensors"
chmod u+w "$tmp/gpt2_altered.safetensors"
size=$(stat -c %s "$tmp/gpt2_altered.safetensors")
printf '\x00\x00\x80\x3f%.0s' $(seq 16) | dd of="$tmp/gpt2_altered.safetensors" bs=1 seek=$((size - 64)) conv=notrunc status=none
out=$("$LT" replay "$tmp/gpt2_altered.safetensors"); rc=$?
echo "$out"
[ $rc -eq 1 ] && echo "$out" | grep -q '^FAIL  .*gpt2_altered.safetensors  worst ' || {
    echo "altered gpt2 trace: exit $rc, expected 1 and a FAIL line"; fail=1; }

# --bf16: the same trace in bf16 mixed precision against bf16 tolerances (replay_gpt2.c, bf16_tolerances): it
# passes them, and its logits miss the fp32 tolerance (1e-5: the run is in bf16); the altered weights still FAIL
out=$("$LT" replay --bf16 tests/data/golden/gpt2_tiny.safetensors); rc=$?
echo "$out"
lg=$(echo "$out" | grep -o ' logits [0-9.e+-]*/' | cut -d' ' -f3 | tr -d /)
[ $rc -eq 0 ] && echo "$out" | grep -q '^PASS  tests/data/golden/gpt2_tiny.safetensors  worst .*  \[bf16 tolerances\]$' &&
    awk -v x="$lg" 'BEGIN { exit !(x > 1e-5) }' || { echo "gpt2 trace --bf16: rc=$rc, logits error '$lg'"; fail=1; }
out=$("$LT" replay --bf16 "$tmp/gpt2_altered.safetensors"); rc=$?
echo "$out"
[ $rc -eq 1 ] && echo "$out" | grep -q '^FAIL  .*gpt2_altered.safetensors  worst ' || {
    echo "altered gpt2 trace with --bf16: exit $rc, expected 1 and a FAIL line"; fail=1; }

# altered trace: overwrite the last 64 data bytes (recorded values) with large floats
cp tests/data/golden/adamw_torch.safetensors "$tmp/altered.safetensors"
size=$(stat -c %s "$tmp/altered.safetensors")
printf '\x00\x00\x80\x7e%.0s' $(seq 16) | dd of="$tmp/altered.safetensors" bs=1 seek=$((size - 64)) conv=notrunc status=none
out=$("$LT" replay "$tmp/altered.safetensors"); rc=$?
echo "$out"
[ $rc -eq 1 ] || { echo "altered trace: exit $rc, expected 1"; fail=1; }
echo "$out" | grep -q '^FAIL ' || { echo "altered trace did not FAIL"; fail=1; }

# a missing file is a FAIL line naming it, exit 1
out=$("$LT" replay "$tmp/no-such-trace.safetensors"); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^FAIL  $tmp/no-such-trace.safetensors  error: .*cannot open" || {
    echo "missing file: rc=$rc out=$out"; fail=1; }
exit $fail
