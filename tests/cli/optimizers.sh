#!/usr/bin/env bash
# `leantrain optimizers` lists every Trainer name of this issue with its exact state bytes per parameter.
set -u
BUILD=${BUILD:-build}
out=$("$BUILD/leantrain" optimizers) || { echo "exit $?"; exit 1; }
echo "$out"
fail=0
echo "$out" | head -1 | grep -Eq '^optim +state_bytes_per_param +reference' || { echo "bad header"; fail=1; }
expect() { # name bytes
    echo "$out" | grep -Eq "^$1 +$2 " || { echo "missing or wrong: $1 $2"; fail=1; }
}
for n in adamw_torch adamw_torch_fused adamw_apex_fused paged_adamw_32bit adam adamw_anyprecision; do expect $n 8.0000; done
expect sgd 0.0000
expect adagrad 4.0000
expect rmsprop 4.0000
expect lion_32bit 4.0000
expect paged_lion_32bit 4.0000
expect adafactor 0.0020
for n in adamw_bnb_8bit adamw_8bit paged_adamw_8bit adamw_torch_8bit; do expect $n 2.0312; done
expect lion_8bit 1.0156
expect paged_lion_8bit 1.0156
expect adamw_torch_4bit 1.0312
exit $fail
