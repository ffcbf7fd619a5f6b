"""Writes the tokenizer's second set of references into tests/data/tokenizer/, from Hugging Face `tokenizers`
(the Rust library behind transformers' fast tokenizers), independently of leantrain's C code:
  gpt2-hf-reference.json   texts from a seeded generator (every Unicode class the pre-tokenizer separates,
                           contractions, whitespace runs, long words) and their ids under GPT-2's files
                           (data/gpt2/encoder.json + vocab.bpe)
  small-tokenizer.json     a 1000-token byte-level BPE trained by tokenizers on a seeded corpus, as it saves it
                           (merges as ["a", "b"] pairs, added_tokens): another vocabulary, another writer
  small-reference.json     texts and their ids under small-tokenizer.json
The project's build and tests never run it. usage: python3 scripts/make-tokenizer-tests.py [SEED]"""
import json, os, random, sys
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 7
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
out = os.path.join(root, "tests", "data", "tokenizer")
os.makedirs(out, exist_ok=True)
rng = random.Random(seed)

POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~",
    " ", "  ", "\t", "\n", "\r\n", "\x0b\x0c", "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL",
    "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u200b", "\u2009", "\u1680", "\u202f", "\u180e", "\ufeff",
    "éèêëàâäôöûüçñÉÀßæøåÆØÅœŒ", "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔ", "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВ",
    "日本語中文字漢字かなカタカナひらがな한국어", "😀🚀🎉👍🏽👨‍👩‍👧‍👦❤️🇩🇪", "\u0301\u0308\u0323", "٠١٢٣٤٥٦٧٨٩",
    "ⅠⅡⅢⅣ²³¹½¼", "ـ", "¡¿«»“”‘’„…–—•·", "\U0001d400\U0001d401", "\ufffd", "\x01\x02\x1b\x7f", "\x1c\x1d\x1e\x1f",
    "http://www.", ".com/", "the ", " the", "ing", "tion", "    ", "\n\n", "\t\t",
]
WORDS = ["hello", "world", "The", "quick", "brown", "fox", "don't", "it's", "we're", "I'm", "they'll", "you've",
         "he'd", "1234", "3.14", "2026-11-27", "café", "naïve", "Straße", "東京", "Москва", "Ελλάδα", "<|endoftext|>"]

def text(special=True):
    s = ""
    for _ in range(rng.randint(1, 30)):
        if rng.random() < 0.3:  # tokenizers splits special tokens out of text; GPT-2's encoder (and ours) does not
            s += rng.choice(WORDS if special else WORDS[:-1]) + rng.choice(["", " ", "  ", "\n", ", ", ". "])
        else:
            p = rng.choice(POOLS)
            s += p if rng.random() < 0.5 else "".join(rng.choice(p) for _ in range(rng.randint(1, 6)))
    return s

texts = [text() for _ in range(400)]
# long pre-tokens: the heap merge path (over 48 bytes) and long whitespace runs
texts += ["a" * 300, " " * 200 + "x", "日本語" * 40, "supercalifragilisticexpialidocious" * 4, "\n" * 100,
          "x" + "\u3000" * 30 + "y", "1234567890" * 12, "!?" * 60]

def gpt2():
    t = Tokenizer(models.BPE.from_file(os.path.join(root, "data/gpt2/encoder.json"),
                                       os.path.join(root, "data/gpt2/vocab.bpe")))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    return t

def dump(path, tok, items):
    rows = [{"text": s, "ids": tok.encode(s, add_special_tokens=False).ids} for s in items]
    for r in rows:  # a reference must decode back to its text
        assert tok.decode(r["ids"], skip_special_tokens=False) == r["text"], r["text"]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")

dump(os.path.join(out, "gpt2-hf-reference.json"), gpt2(), texts)

small = Tokenizer(models.BPE())
small.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
small.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
corpus = [text(False) for _ in range(3000)]
small.train_from_iterator(corpus, trainer=trainer)
small.save(os.path.join(out, "small-tokenizer.json"))
dump(os.path.join(out, "small-reference.json"), small, [text(False) for _ in range(150)])
print("wrote", out)
