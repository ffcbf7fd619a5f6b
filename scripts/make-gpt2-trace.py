"""Writes a gpt2-trace-1 file (the format of ../shared/golden/gpt2_tiny.safetensors) from the real Hugging Face
GPT2LMHeadModel (dropout off), for a size and seed of your choice: a cross-check of `leantrain replay` beyond the
shared trace. Needs torch, transformers, safetensors; the build and tests never run it.
With --dropout=EMBD,RESID,ATTN,SEED the model trains with those pdrops (eager attention), every dropout call
drawing leantrain's mask (kernels/philox.h: Philox4x32-10 of the seed, the stream, the site and the element,
written again here in numpy) in place of torch's random one: the trace's logits, loss and gradients come from a
forward at stream 0, training step s from stream s, and its metadata carries "dropout": {"seed": SEED}, which
`leantrain replay` follows. So the placement and scaling of every dropout is checked against transformers' code.
usage: python3 scripts/make-gpt2-trace.py OUT.safetensors [SEED] [n_layer n_embd n_head vocab n_positions B T]
                                          [--dropout=EMBD,RESID,ATTN,SEED]"""
import json, sys
import numpy as np
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

dropout = None
args = [a for a in sys.argv[1:] if not a.startswith("--dropout=")]
for a in sys.argv[1:]:
    if a.startswith("--dropout="):
        e, r, at, ds = a[len("--dropout="):].split(",")
        dropout = (float(e), float(r), float(at), int(ds))
out = args[0]
seed = int(args[1]) if len(args) > 1 else 7
L, C, H, V, P, B, T = (int(x) for x in args[2:9]) if len(args) > 8 else (3, 64, 8, 300, 48, 2, 33)
torch.manual_seed(seed)
pe, pr, pa = dropout[:3] if dropout else (0.0, 0.0, 0.0)
cfg = GPT2Config(vocab_size=V, n_positions=P, n_embd=C, n_layer=L, n_head=H, resid_pdrop=pr, embd_pdrop=pe,
                 attn_pdrop=pa, activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                 **({"attn_implementation": "eager"} if dropout else {}))
model = GPT2LMHeadModel(cfg).float()
model.train()

M32 = (1 << 32) - 1


def philox_keep_factor(seed_, site, stream, n, p):
    """leantrain's dropout factors (0 or float32(1 / (1 - p))) of elements 0 .. n-1 of a site (lt_dropout_make,
    lt_dropout_keep)."""
    z = (seed_ + 0x9E3779B97F4A7C15) & ((1 << 64) - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    z ^= z >> 31
    k0, k1 = z & M32, z >> 32
    g = np.arange((n + 3) // 4, dtype=np.uint64)
    c0, c1 = g & np.uint64(M32), g >> np.uint64(32)
    c2 = np.full_like(g, site)
    c3 = np.full_like(g, stream)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        n0 = (p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0)
        n2 = (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1)
        c1, c3, c0, c2 = p1 & np.uint64(M32), p0 & np.uint64(M32), n0, n2
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    words = np.stack([c0, c1, c2, c3], axis=1).reshape(-1)[:n]
    threshold = int(p * 4294967296.0) if 0.0 < p < 1.0 else 0
    scale = np.float32(1.0 / (1.0 - p))
    return np.where(words >= np.uint64(threshold), scale, np.float32(0.0)).astype(np.float32)


class Masks:
    """torch.nn.functional.dropout replaced: the k-th call of a forward is site k (embeddings, then per block the
    attention probabilities, the attention output, the mlp output: transformers' order), its mask leantrain's."""

    def __init__(self):
        self.stream, self.calls = 0, 0

    def __call__(self, x, p=0.5, training=True, inplace=False):
        site = self.calls
        self.calls += 1
        if not training or p == 0.0:
            return x
        want = (B, H, T, T) if site % 3 == 1 else (B, T, C)
        assert tuple(x.shape) == want, f"dropout call {site}: shape {tuple(x.shape)}, expected {want}"
        f = philox_keep_factor(dropout[3], site, self.stream, x.numel(), p)
        return x * torch.from_numpy(f).reshape(x.shape).to(x.dtype)


masks = Masks()
if dropout:
    torch.nn.functional.dropout = masks


def forward(stream):
    masks.stream, masks.calls = stream, 0
    r = model(input_ids=inputs)
    assert not dropout or masks.calls == 1 + 3 * L, f"{masks.calls} dropout calls, expected {1 + 3 * L}"
    return r


with torch.no_grad():  # larger-than-init weights so the trace exercises more than the initial regime
    for n, p in model.named_parameters():
        if n.endswith("ln_1.weight") or n.endswith("ln_2.weight") or n.endswith("ln_f.weight"):
            p.add_(0.1 * torch.randn_like(p))
        elif n.endswith(".bias"):
            p.add_(0.02 * torch.randn_like(p))
inputs = torch.randint(0, V, (B, T))
targets = torch.randint(0, V, (B, T))
weights = {k.replace("transformer.", ""): v.detach().clone() for k, v in model.state_dict().items()
           if not k.startswith("lm_head") and not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
out_t = forward(0)
logits = out_t.logits
loss = torch.nn.functional.cross_entropy(logits.view(-1, V), targets.view(-1))
loss.backward()
grads = {f"grad.{k.replace('transformer.', '')}": p.grad.detach().clone() for k, p in model.named_parameters()}
# AdamW steps on the same batch, two groups as the Trainer makes them
decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or ".ln_" in n or "ln_f" in n)]
nodecay = [p for n, p in model.named_parameters() if n.endswith(".bias") or ".ln_" in n or "ln_f" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                        lr=3e-3, betas=(0.9, 0.95), eps=1e-8, foreach=False)
losses = []
S = 5
for s in range(S):
    opt.zero_grad()
    lg = forward(s).logits
    l = torch.nn.functional.cross_entropy(lg.view(-1, V), targets.view(-1))
    losses.append(l.item())
    l.backward()
    opt.step()
t = dict(weights)
t.update(grads)
t["inputs"] = inputs.to(torch.int32)
t["targets"] = targets.to(torch.int32)
t["logits"] = logits.detach()
t["loss"] = loss.detach().reshape(1)
t["train_losses"] = torch.tensor(losses, dtype=torch.float32)
import transformers
meta = {"format": "gpt2-trace-1",
        "config": json.dumps({"vocab_size": V, "n_positions": P, "n_embd": C, "n_layer": L, "n_head": H,
                              "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "tie_word_embeddings": True,
                              "embd_pdrop": pe, "resid_pdrop": pr, "attn_pdrop": pa}),
        "batch": str(B), "seq_len": str(T),
        "train": json.dumps({"optim": "adamw_torch", "lr": 3e-3, "betas": [0.9, 0.95], "eps": 1e-8,
                             "weight_decay": {"decay": 0.1, "no_decay (biases, ln_*)": 0.0}, "steps": S}),
        "tolerance": json.dumps({"logits_max_abs": 1e-5, "loss_abs": 1e-5, "grad_max_abs_over_tensor_max_abs": 1e-5,
                                 "train_losses_abs": 1e-4}),
        "producer": f"transformers {transformers.__version__} GPT2LMHeadModel "
                    f"({'dropout with leantrain masks, eager attention' if dropout else 'dropout 0'}), torch {torch.__version__}"}
if dropout:
    meta["dropout"] = json.dumps({"seed": dropout[3], "streams": "the forward of logits, loss and grads: 0; "
                                  "training step s (from 0): s"})
save_file({k: v.contiguous() for k, v in t.items()}, out, metadata=meta)
print("wrote", out, "loss", loss.item())
