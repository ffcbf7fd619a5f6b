#!/usr/bin/env bash
# Training under an address-space limit (`ulimit -v`, common on shared clusters), where malloc fails whatever the
# host has free. OpenBLAS maps a 128 MiB buffer per thread at its first product and retries one it cannot map
# forever, so a run whose model had used up the limit used to hang there (and a first signal could not stop it).
# Now the trainer has OpenBLAS map its buffers before the model allocates, and counts the limit as memory:
#   - a limit that leaves less than a buffer per thread: one line naming ulimit -v and what OpenBLAS needs, exit 1,
#     nothing written (not a hang);
#   - a limit with room for the buffers but not for the batch's plan: refused before allocating, naming the limit
#     as the memory available, with the batch that would fit; --auto_find_batch_size trains with it.
# Each run is killed after 120 s: a hang fails the test instead of stalling it.
# (A limit below what the program maps before main, about 300 MiB with OpenBLAS's threads, hangs in OpenBLAS's own
# initialisation, before leantrain runs: out of its reach.)
source tests/cli/lib/train_common.bash address_limit 60000
if ldd "$LT" 2>/dev/null | grep -q libasan; then
    # AddressSanitizer maps terabytes of shadow memory at start: no `ulimit -v` leaves it room to run
    echo "an AddressSanitizer build cannot run under an address-space limit; tests/test_sysmem.c checks the figures"
    exit 0
fi
M=(--train_file "$tmp/text.txt" --n_layer 2 --n_embd 256 --n_head 4 --n_positions 256 --block_size 256
   --threads 2 --max_steps 1 --logging_steps 1 --eval_strategy no --save_strategy no --device cpu
   --per_device_train_batch_size 32)
MiB=1024 # ulimit -v counts KiB

# limited KIB ARGS...: `leantrain train ARGS` under ulimit -v KIB, killed after 120 s; its output in $out, status in $rc
limited() {
    local kib=$1; shift
    rm -rf "$tmp/out"
    out=$( (ulimit -v "$kib" && exec timeout -s KILL 120 "$LT" train "${M[@]}" "$@" --output_dir "$tmp/out") 2>&1 )
    rc=$?
    [ $rc -ne 137 ] || { echo "under ulimit -v $kib KiB the run hung (killed after 120 s): $*"; fail=1; }
}

# The address space the program maps by the memory check (OpenBLAS's buffers included), from a probe whose batch
# cannot fit under 2 GiB: its refusal names what is left of the limit
limited $((2048 * MiB)) --per_device_train_batch_size 1024
avail=$(echo "$out" | sed -nE 's/.* but ([0-9]+)(\.[0-9]+)? MiB are available \(the address-space limit \(ulimit -v\)\).*/\1/p')
plan=$("$LT" plan "${M[@]}" | sed -nE 's/.* total ([0-9.]+).*/\1/p')
if [ -z "$avail" ] || [ -z "$plan" ]; then
    echo "probe under 2 GiB: no figure of the address space left (rc $rc), plan '$plan':"; echo "$out"; exit 1
fi
mapped=$((2048 - avail))
echo "address space mapped at the memory check: about $mapped MiB; the plan of batch 32: $plan MiB"

# 100 MiB less: before OpenBLAS mapped its buffers (2 or 3 of 128 MiB) less than the 3 it needs was left
limited $(((mapped - 100) * MiB))
if [ $rc -eq 0 ] || ! echo "$out" | grep -q "ulimit -v.*OpenBLAS maps 3 buffers of 128 MiB with 2 threads (384 MiB" || [ -e "$tmp/out" ]; then
    echo "limit below OpenBLAS's buffers: expected its one-line refusal, rc $rc, output: $out"; fail=1
fi

# room for the buffers and half the plan: refused before allocating, naming the limit
half=$(awk -v p="$plan" 'BEGIN { printf "%d", p / 2 }')
limited $(((mapped + half) * MiB))
if [ $rc -eq 0 ] || ! echo "$out" | grep -q "batch 32 needs $plan MiB .* are available (the address-space limit (ulimit -v)): --auto_find_batch_size would train with batch" || [ -e "$tmp/out" ]; then
    echo "limit below the plan: expected the plan's refusal naming ulimit -v, rc $rc, output: $out"; fail=1
fi
# with --auto_find_batch_size: a smaller batch that fits, trained to the end
limited $(((mapped + half) * MiB)) --auto_find_batch_size
b=$(echo "$out" | sed -nE 's/^auto_find_batch_size: batch ([0-9]+),.*available \(the address-space limit.*/\1/p')
if [ $rc -ne 0 ] || [ -z "$b" ] || [ "$b" -ge 32 ] || ! echo "$out" | grep -q "^done: 1 steps"; then
    echo "limit below the plan, --auto_find_batch_size: expected a smaller batch trained, rc $rc, output: $out"; fail=1
else
    echo "under ulimit -v $((mapped + half)) MiB: batch 32 refused ($plan MiB planned), batch $b trained"
fi
rm -rf "$tmp"
exit $fail
