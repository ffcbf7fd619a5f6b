# Sourced by the train tests (tests/cli/train*.sh, precision.sh; tests/gpu/*.sh, which then set LT to the binary
# they are given): the binary, a temporary folder named after the test, a generated corpus of $1 bytes in
# $tmp/text.txt, and two helpers.
#   usage: source tests/cli/lib/train_common.bash NAME BYTES
set -u
BUILD=${BUILD:-build}
LT="$BUILD/leantrain"
tmp=$(mktemp -d "${LT_TEST_TMP:-build/tmp}/$1.XXXXXX")
fail=0
cc -std=c11 -O2 -o "$tmp/gen_corpus" scripts/gen_corpus.c || exit 1
"$tmp/gen_corpus" "$tmp/text.txt" "$2" > /dev/null || exit 1

# a log.jsonl without its tokens_per_s fields (the one thing two runs of the same steps may differ in)
notps() { sed 's/"tokens_per_s":[^,}]*//' "$1"; }
# a results file (eval_results.json, ...) without its speed fields (the Trainer's speed_metrics: runtime and rates)
nospeed() { grep -vE '"[a-z]+_(runtime|samples_per_second|steps_per_second)":' "$1"; }

# bad MESSAGE ARGS...: `leantrain train ARGS` must fail with MESSAGE in its output and create no output folder
bad() {
    local want="$1"; shift
    rm -rf "$tmp/out"
    out=$("$LT" train "$@" --output_dir "$tmp/out" 2>&1); rc=$?
    if [ $rc -eq 0 ] || ! echo "$out" | grep -qF -- "$want" || [ -e "$tmp/out" ]; then
        echo "bad input ($want): rc=$rc, output: $out"; [ -e "$tmp/out" ] && echo "  and $tmp/out was created"; fail=1
    fi
}
