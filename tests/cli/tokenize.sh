#!/usr/bin/env bash
# `leantrain tokenize` on a generated multi-megabyte text (stories plus Unicode, NUL and invalid UTF-8): a valid
# llm.c token file whose ids decode back to the text byte for byte, the same ids whatever the chunk size and thread
# count or from a pipe; failures (missing input, bad tokenizer, unwritable output, a signal) leave no output file
# and keep an existing one; the token file and the text itself train a small GPT-2 with GPT-2's 50257 tokens, and
# generate decodes its sample.
set -u
BUILD=${BUILD:-build}
LT="$BUILD/leantrain"
tmp=$(mktemp -d "${LT_TEST_TMP:-build/tmp}/tokenize.XXXXXX")
fail=0
cc -std=c11 -O2 -o "$tmp/gen_corpus" scripts/gen_corpus.c || exit 1
"$tmp/gen_corpus" "$tmp/stories.txt" 3000000 >/dev/null || exit 1
{
    cat "$tmp/stories.txt"
    printf 'Unicode: café naïve 日本語 Ελληνικά 🚀 \xc2\xa0nbsp\xe2\x80\x8bzero width\n'
    printf 'invalid: \xff\xfe lone \x80 truncated \xe6\x97 overlong \xc0\x80 NUL \0 end\n'
    printf "contractions: it's we'll they're I'd you've\r\n\ttabs   and spaces   \n\n\n"
} > "$tmp/text.txt"
size=$(stat -c %s "$tmp/text.txt")

"$LT" tokenize --input "$tmp/text.txt" --output "$tmp/a.bin" --tokenizer_name_or_path data/gpt2 --chunk_mb 0.25 \
    > "$tmp/a.log" 2>&1 || { echo "tokenize failed"; cat "$tmp/a.log"; exit 1; }
cat "$tmp/a.log"
read -r magic version count <<< "$(od -A n -t d4 -N 12 "$tmp/a.bin")"
[ "$magic" = 20240520 ] && [ "$version" = 1 ] || { echo "bad header: $magic $version"; fail=1; }
[ "$(stat -c %s "$tmp/a.bin")" -eq $((1024 + 2 * count)) ] || { echo "size is not 1024 + 2 x $count"; fail=1; }
[ "$count" -gt $((size / 8)) ] && [ "$count" -lt $((size / 2)) ] || { echo "$count tokens for $size bytes"; fail=1; }
grep -q "^tokenize: $count tokens from $size bytes" "$tmp/a.log" || { echo "summary line wrong"; fail=1; }

"$LT" tokenize --decode --input "$tmp/a.bin" --output "$tmp/back.txt" --tokenizer_name_or_path data/gpt2 \
    || { echo "decode failed"; fail=1; }
cmp "$tmp/text.txt" "$tmp/back.txt" || { echo "decoded text differs"; fail=1; }

# the same ids: one thread and one big chunk; the default tokenizer (gpt2: found next to the program); a pipe
"$LT" tokenize --input "$tmp/text.txt" --output "$tmp/b.bin" --threads 1 --chunk_mb 64 > /dev/null || fail=1
cmp "$tmp/a.bin" "$tmp/b.bin" || { echo "chunks/threads change the ids"; fail=1; }
cat "$tmp/text.txt" | "$LT" tokenize --input - --output "$tmp/c.bin" --threads 2 --chunk_mb 1 > /dev/null || fail=1
cmp "$tmp/a.bin" "$tmp/c.bin" || { echo "standard input gives other ids"; fail=1; }
"$LT" tokenize --decode --input "$tmp/a.bin" --output - | head -c 20 | grep -q . || { echo "decode to stdout"; fail=1; }

# failures: one line, exit 1, nothing at the output path, no temporary file; an existing output is kept
noout() { # label, args...
    local label="$1"; shift
    rm -f "$tmp/out.bin"
    "$LT" tokenize "$@" --output "$tmp/out.bin" > "$tmp/f.log" 2>&1; local rc=$?
    [ $rc -eq 1 ] || { echo "$label: exit $rc, expected 1"; fail=1; }
    [ -e "$tmp/out.bin" ] && { echo "$label: left an output file"; fail=1; }
    ls "$tmp" | grep -q 'out.bin.tmp' && { echo "$label: left a temporary file"; fail=1; }
    grep -q "leantrain tokenize: " "$tmp/f.log" || { echo "$label: no message"; cat "$tmp/f.log"; fail=1; }
    echo "$label: $(cat "$tmp/f.log")"
}
noout "missing input" --input "$tmp/no-such.txt"
noout "bad tokenizer" --input "$tmp/text.txt" --tokenizer_name_or_path "$tmp"
mkdir -p "$tmp/badtok" && echo '{"a": 1,' > "$tmp/badtok/tokenizer.json"
noout "bad tokenizer.json" --input "$tmp/text.txt" --tokenizer_name_or_path "$tmp/badtok"
: > "$tmp/empty.txt"
noout "empty input" --input "$tmp/empty.txt"
"$LT" tokenize --input "$tmp/text.txt" --output "$tmp/no-such-dir/x.bin" > /dev/null 2>&1 && { echo "unwritable output accepted"; fail=1; }
echo old > "$tmp/keep.bin"
"$LT" tokenize --input "$tmp/no-such.txt" --output "$tmp/keep.bin" > /dev/null 2>&1
[ "$(cat "$tmp/keep.bin")" = old ] || { echo "a failed run replaced an existing output"; fail=1; }
# a signal mid-run: the input is a FIFO held open, so the run is surely still reading when the signal comes
mkfifo "$tmp/fifo"
"$LT" tokenize --input "$tmp/fifo" --output "$tmp/sig.bin" --chunk_mb 1 > "$tmp/sig.log" 2>&1 &
pid=$!
exec 3> "$tmp/fifo"
cat "$tmp/text.txt" >&3
sleep 1
kill -TERM $pid
wait $pid; rc=$?
exec 3>&-
[ $rc -eq 1 ] || { echo "signal: exit $rc, expected 1"; cat "$tmp/sig.log"; fail=1; }
grep -q "interrupted" "$tmp/sig.log" || { echo "signal: no message"; cat "$tmp/sig.log"; fail=1; }
[ -e "$tmp/sig.bin" ] && { echo "signal: left an output file"; fail=1; }
ls "$tmp" | grep -q 'sig.bin.tmp' && { echo "signal: left a temporary file"; fail=1; }

# GPT-2's 50257 tokens train: from the token file, and from the text with the tokenizer; generate decodes
TRAIN=(--n_layer 1 --n_embd 16 --n_head 1 --n_positions 32 --block_size 32 --per_device_train_batch_size 2
       --max_steps 2 --logging_steps 1 --save_steps 2 --eval_steps 0 --learning_rate 1e-3 --threads 2)
"$LT" train --train_file "$tmp/a.bin" "${TRAIN[@]}" --output_dir "$tmp/run-bin" > "$tmp/t1.log" 2>&1 \
    || { echo "training on the token file failed"; cat "$tmp/t1.log"; fail=1; }
grep -q "vocab 50257" "$tmp/t1.log" || { echo "token file: vocab is not 50257"; fail=1; }
head -c 200000 "$tmp/text.txt" > "$tmp/small.txt"
"$LT" train --train_file "$tmp/small.txt" --tokenizer_name_or_path data/gpt2 "${TRAIN[@]}" \
    --output_dir "$tmp/run-text" > "$tmp/t2.log" 2>&1 || { echo "training on text failed"; cat "$tmp/t2.log"; fail=1; }
grep -q "vocab 50257" "$tmp/t2.log" && grep -q "^tokenizer: " "$tmp/t2.log" || { echo "text: not tokenized"; cat "$tmp/t2.log"; fail=1; }
for f in vocab.json merges.txt; do [ -f "$tmp/run-text/checkpoint-2/$f" ] || { echo "checkpoint lacks $f"; fail=1; }; done
out=$("$LT" generate --model_name_or_path "$tmp/run-text/checkpoint-2" --prompt "Ada had a" --max_new_tokens 5 2>&1) \
    || { echo "generate failed: $out"; fail=1; }
case "$out" in "Ada had a"*) ;; *) echo "generate did not print text: $out"; fail=1 ;; esac
echo "generate: $out"

# bench tokenize times run_clm's line-by-line reading after the whole-text encoder; on this text every line end
# lies between two non-spaces (a safe cut), so the lines' ids are the whole text's: the same bytes per token
bt=$("$LT" bench tokenize --input "$tmp/small.txt" --threads 1 --reps 1 2>&1) || { echo "bench tokenize failed: $bt"; fail=1; }
whole=$(echo "$bt" | awk '$1 == "1" { print $4 }'); lines=$(echo "$bt" | awk '$1 == "lines" { print $4 }')
[ -n "$whole" ] && [ "$whole" = "$lines" ] || { echo "bench tokenize: bytes per token $whole whole, $lines by lines: $bt"; fail=1; }

rm -rf "$tmp"
exit $fail
