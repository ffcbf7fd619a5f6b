#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_tokenizer_files (fuzz/corpus-tokenizer/):
small byte-level BPE tokenizers in both layouts (first byte even: encoder.json
"\\n%%\\n" vocab.bpe; odd: tokenizer.json). Standard library only.
Usage: python3 fuzz/gen_tokenizer_corpus.py fuzz/corpus-tokenizer"""
import json, os, sys


def byte_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = byte_unicode()


def spell(s):
    return "".join(B2U[b] for b in s.encode("utf-8"))


def vocab(extra):
    v = {B2U[b]: b for b in range(256)}
    for w in extra:
        v[spell(w)] = len(v)
    return v


MERGES = [("a", "b"), ("ab", "ab"), (" ", "w"), (" w", "o"), ("l", "l")]
WORDS = ["ab", "abab", " w", " wo", "ll"]


def gpt2_layout(path, eot):
    v = vocab(WORDS)
    if eot:
        v["<|endoftext|>"] = len(v)
    merges = "#version: 0.2\n" + "".join(f"{spell(a)} {spell(b)}\n" for a, b in MERGES)
    with open(path, "wb") as f:
        f.write(b"\x00" + json.dumps(v, ensure_ascii=False).encode() + b"\n%%\n" + merges.encode())


def hf_layout(path, pairs, added):
    v = vocab(WORDS)
    merges = [[spell(a), spell(b)] if pairs else f"{spell(a)} {spell(b)}" for a, b in MERGES]
    j = {"version": "1.0", "added_tokens": added, "normalizer": None,
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
         "decoder": {"type": "ByteLevel"},
         "model": {"type": "BPE", "dropout": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                   "byte_fallback": False, "ignore_merges": False, "vocab": v, "merges": merges}}
    with open(path, "wb") as f:
        f.write(b"\x01" + json.dumps(j, ensure_ascii=False).encode())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus-tokenizer"
    os.makedirs(out, exist_ok=True)
    gpt2_layout(os.path.join(out, "gpt2_layout"), False)
    gpt2_layout(os.path.join(out, "gpt2_layout_eot"), True)
    hf_layout(os.path.join(out, "hf_string_merges"), False, [])
    hf_layout(os.path.join(out, "hf_pair_merges"), True, [{"id": 261, "content": "<|endoftext|>", "special": True}])
    # an added token spelled like a vocabulary token, under another id
    hf_layout(os.path.join(out, "hf_added_duplicate"), True, [{"id": 300, "content": "ab", "special": True}])


if __name__ == "__main__":
    main()
