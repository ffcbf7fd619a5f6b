"""Writes tests/data/generate/: a tiny random GPT-2 (config.json, model.safetensors: GPT2LMHeadModel's
save_pretrained) and generate.json, what transformers' generate() did with it for a prompt under several
settings: the tokens it produced, and at each step the raw logits of the last position and the scores its logits
processors made of them (output_logits / output_scores; removed scores as null). tests/test_sample.c holds
leantrain's processors (src/model/sample.c) to the scores, and tests/cli/generate.sh holds `leantrain generate`'s
greedy tokens to generate()'s. Needs torch and transformers; the tests do not.
usage: python3 scripts/make-generate-reference.py"""
import json, math, os
import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "generate")
os.makedirs(out, exist_ok=True)
torch.manual_seed(7)
# initializer_range 0.3: logits a few units apart, so that top-k, top-p and the penalty keep and cut real sets
cfg = GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=2, embd_pdrop=0.0, resid_pdrop=0.0,
                 attn_pdrop=0.0, bos_token_id=0, eos_token_id=299, initializer_range=0.3)
model = GPT2LMHeadModel(cfg).eval()
model.save_pretrained(out, safe_serialization=True)
for junk in ("generation_config.json",):
    p = os.path.join(out, junk)
    if os.path.exists(p):
        os.remove(p)

prompt = [5, 17, 42, 17, 99, 5, 230]
CASES = [
    {"do_sample": False},
    {"do_sample": False, "repetition_penalty": 1.5},
    {"do_sample": True, "temperature": 0.7},  # top_k 50, generate's default
    {"do_sample": True, "top_k": 0, "top_p": 0.9},
    {"do_sample": True, "top_k": 20, "top_p": 0.8, "temperature": 1.5, "repetition_penalty": 1.2},
    {"do_sample": True, "top_k": 5, "temperature": 0.5, "repetition_penalty": 0.8},
]


def f32(x):
    return None if math.isinf(x) and x < 0 else float(x)


cases = []
for i, c in enumerate(CASES):
    torch.manual_seed(100 + i)
    g = model.generate(torch.tensor([prompt]), max_new_tokens=6, return_dict_in_generate=True, output_scores=True,
                       output_logits=True, pad_token_id=299, eos_token_id=None, **c)
    steps = []
    for s in range(len(g.scores)):
        steps.append({"logits": [float(x) for x in g.logits[s][0].tolist()],
                      "scores": [f32(x) for x in g.scores[s][0].tolist()]})
    cases.append({"params": c, "tokens": g.sequences[0].tolist(), "steps": steps})
    print(c, g.sequences[0].tolist()[len(prompt):])

with open(os.path.join(out, "generate.json"), "w") as f:
    json.dump({"producer": f"transformers {transformers.__version__} generate(), torch {torch.__version__}",
               "prompt": prompt, "defaults": {"temperature": 1.0, "top_k": 50, "top_p": 1.0,
                                              "repetition_penalty": 1.0}, "cases": cases}, f)
    f.write("\n")
