#!/usr/bin/env bash
# `leantrain generate` against transformers' generate() (tests/data/generate: a tiny random GPT-2 and what
# generate() made of a prompt, scripts/make-generate-reference.py): with --do_sample false, the same 6 tokens,
# plain and with --repetition_penalty 1.5 (the model's forward and the processors together); a sampled run
# repeats itself for a seed and its tokens are ids of the model; generation ends after the end-of-text id
# (--eos_token_id, by default config.json's); bad values are refused with the flag named.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
bin="$BUILD/leantrain"
fail=0
d=tests/data/generate
prompt=5,17,42,17,99,5,230
# the k-th case's tokens in generate.json (cases 0 and 1 are greedy: plain, repetition_penalty 1.5)
want() { grep -o '"tokens": \[[0-9, ]*\]' "$d/generate.json" | sed -n "$1p" | sed -E 's/.*\[(.*)\]/\1/; s/ //g'; }
for k in 1 2; do
    extra=(); [ $k = 2 ] && extra=(--repetition_penalty 1.5)
    got=$("$bin" generate --model_name_or_path "$d" --prompt_ids $prompt --max_new_tokens 6 --do_sample false "${extra[@]}" 2>&1)
    w=$(want $k)
    [ -n "$w" ] && [ "$got" = "$w" ] && echo "greedy ${extra[*]:-plain}: generate()'s tokens $w" ||
        { echo "FAIL: greedy ${extra[*]:-}: $got, generate() gave $w"; fail=1; }
done
# past 63 tokens (the model's 64 positions less the last) the window slides (a whole-window forward a step): 70 new tokens, generate()'s
# first 6 among them
long=$("$bin" generate --model_name_or_path "$d" --prompt_ids $prompt --max_new_tokens 70 --do_sample false)
case "$long" in "$(want 1)"*) [ "$(echo "$long" | tr ',' '\n' | wc -l)" = 77 ] ;; *) false ;; esac ||
    { echo "FAIL: 70 greedy tokens: $long"; fail=1; }
# --temperature 0 is greedy too
[ "$("$bin" generate --model_name_or_path "$d" --prompt_ids $prompt --max_new_tokens 6 --temperature 0)" = "$(want 1)" ] ||
    { echo "FAIL: --temperature 0 is not greedy"; fail=1; }
# sampling: the same seed, the same tokens; another seed, others (over 40 tokens); every id within the vocabulary
s1=$("$bin" generate --model_name_or_path "$d" --prompt_ids $prompt --max_new_tokens 40 --top_p 0.9 --seed 3)
s2=$("$bin" generate --model_name_or_path "$d" --prompt_ids $prompt --max_new_tokens 40 --top_p 0.9 --seed 3)
s3=$("$bin" generate --model_name_or_path "$d" --prompt_ids $prompt --max_new_tokens 40 --top_p 0.9 --seed 4)
[ "$s1" = "$s2" ] && [ "$s1" != "$s3" ] && [ "$(echo "$s1" | tr ',' '\n' | awk '$1 < 0 || $1 >= 300' | wc -l)" = 0 ] &&
    [ "$(echo "$s1" | tr ',' '\n' | wc -l)" = 47 ] ||
    { echo "FAIL: sampling: '$s1' / '$s2' / '$s3'"; fail=1; }
# the end of text: generation stops after --eos_token_id (here the second greedy token, 219), and by default after
# config.json's eos_token_id (a copy of the model whose config names 219)
tmp=$(mktemp -d "${LT_TEST_TMP:-$BUILD/tmp}/generate.XXXXXX")
cp "$d/model.safetensors" "$tmp/"
sed 's/"eos_token_id": 299/"eos_token_id": 219/' "$d/config.json" > "$tmp/config.json"
e1=$("$bin" generate --model_name_or_path "$d" --prompt_ids $prompt --max_new_tokens 6 --do_sample false --eos_token_id 219)
e2=$("$bin" generate --model_name_or_path "$tmp" --prompt_ids $prompt --max_new_tokens 6 --do_sample false)
e3=$("$bin" generate --model_name_or_path "$tmp" --prompt_ids $prompt --max_new_tokens 6 --do_sample false --eos_token_id -1)
[ "$e1" = "$prompt,276,219" ] && [ "$e2" = "$e1" ] && [ "$e3" = "$(want 1)" ] && grep -q '"eos_token_id": 219' "$tmp/config.json" ||
    { echo "FAIL: end of text: '$e1', from config.json '$e2', with -1 '$e3'"; fail=1; }
rm -rf "$tmp"
for bad in "--eos_token_id 300:--eos_token_id 300 is not a token of this model" "--top_p 0:--top_p must be in (0, 1]" "--temperature -1:--temperature must be > 0" \
           "--repetition_penalty 0:--repetition_penalty must be > 0" "--top_k -2:--top_k must be >= 0" \
           "--do_sample maybe:--do_sample: bad value 'maybe'"; do
    flag=${bad%%:*} msg=${bad#*:}
    out=$("$bin" generate --model_name_or_path "$d" --prompt_ids $prompt $flag 2>&1); rc=$?
    [ $rc -ne 0 ] && echo "$out" | grep -qF -- "$msg" || { echo "FAIL: $flag: rc $rc, '$out'"; fail=1; }
done
exit $fail
