#!/usr/bin/env bash
# The example trains with every optimizer name and lowers the loss with each.
set -u
BUILD=${BUILD:-build}
fail=0
while read -r name args lr; do
    [ "$args" = "-" ] && args=""
    "$BUILD/examples/train_mlp" "$name" "$args" "$lr" | tail -1 || { echo "FAILED: $name $args"; fail=1; }
done <<'LIST'
adamw_torch - 1e-2
adamw_torch_fused - 1e-2
adamw_apex_fused - 1e-2
paged_adamw_32bit - 1e-2
adam - 1e-2
adamw_anyprecision use_kahan_summation=True 1e-2
sgd momentum=0.9,nesterov=True 0.05
adagrad - 5e-2
rmsprop - 1e-3
lion_32bit - 1e-3
paged_lion_32bit - 1e-3
adafactor - 1e-2
adamw_bnb_8bit min_8bit_size=64,block_size=64 1e-2
adamw_8bit - 1e-2
paged_adamw_8bit - 1e-2
lion_8bit min_8bit_size=64,block_size=64 1e-3
paged_lion_8bit - 1e-3
adamw_torch_8bit - 1e-2
adamw_torch_4bit - 1e-2
LIST
"$BUILD/examples/train_mlp" no_such_optim 2>/dev/null && { echo "unknown name accepted"; fail=1; }
exit $fail
