#!/usr/bin/env bash
# `leantrain bench optim` prints the documented columns and one row per optimizer, `bench generate` its row
# (tiny sizes: this checks the interface, not the speed).
set -u
BUILD=${BUILD:-build}
LT="$BUILD/leantrain"
fail=0
out=$("$LT" bench optim --params 0.5 --steps 2) || { echo "exit $?"; exit 1; }
echo "$out"
echo "$out" | grep -Eq '^optim +ms_per_step +gb_per_s +bw_ratio +state_bytes_per_param +copy_gb_per_s$' || { echo "bad header"; fail=1; }
rows=$(echo "$out" | grep -Ev '^(#|optim )' | wc -l)
names=$("$LT" optimizers | tail -n +2 | wc -l)
[ "$rows" -eq "$names" ] || { echo "$rows rows for $names optimizers"; fail=1; }
one=$("$LT" bench optim --params 0.5 --steps 2 --optim adamw_torch | grep -Ev '^(#|optim )')
echo "$one" | grep -Eq '^adamw_torch +[0-9.]+ +[0-9.]+ +[0-9.]+ +8\.0000 +[0-9.]+$' || { echo "bad --optim row: $one"; fail=1; }
"$LT" bench optim --optim nope >/dev/null 2>&1; [ $? -eq 2 ] || { echo "unknown --optim not refused"; fail=1; }
# --dtype bf16: the same row shape, every optimizer steps bf16 storage; a bad value is refused
b16=$("$LT" bench optim --params 0.5 --steps 2 --dtype bf16) || { echo "--dtype bf16: exit $?"; fail=1; }
echo "$b16" | grep -q '^# parameters and gradients stored as bf16$' || { echo "--dtype bf16 not reported"; fail=1; }
rows16=$(echo "$b16" | grep -Ev '^(#|optim )' | grep -Ec '^[a-z0-9_]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$')
[ "$rows16" -eq "$names" ] || { echo "--dtype bf16: $rows16 rows for $names optimizers"; fail=1; }
"$LT" bench optim --dtype f64 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "bad --dtype not refused"; fail=1; }
# bench generate (a 2-layer model of C 64): its columns and one kv_cache row; bad sizes refused
g=$("$LT" bench generate --n_layer 2 --n_embd 64 --prompt 4 --tokens 6) || { echo "bench generate: exit $?"; fail=1; }
echo "$g" | grep -Eq '^method +ms_per_token +weight_gb_per_s +read_gb_per_s +bw_ratio +full_ms_per_tok +speedup$' &&
    echo "$g" | grep -Eq '^kv_cache( +[0-9.]+){6}$' || { echo "bench generate: $g"; fail=1; }
"$LT" bench generate --prompt 1000 --tokens 100 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "bench generate: too long not refused"; fail=1; }
exit $fail
