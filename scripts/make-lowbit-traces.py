"""Writes optim-trace-1 files from the real low-bit optimizers (torchao AdamW8bit/AdamW4bit and, where its
CPU backend has them, bitsandbytes AdamW8bit/Lion8bit), for cross-checking leantrain's low-bit names with
`leantrain replay`. Needs torch, torchao, bitsandbytes; the project never runs this (its outputs are
committed under tests/data/lowbit/).
usage: python3 scripts/make-lowbit-traces.py OUTDIR"""
import json, os, sys
import torch
from safetensors.torch import save_file

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
SHAPES = {"w": (64, 128), "k3": (4, 32, 64), "bias": (96,), "small": (40, 25)}
STEPS = 8

def grads(seed):
    g = torch.Generator().manual_seed(seed)
    res = []
    for t in range(STEPS):
        step = {}
        for n, s in SHAPES.items():
            x = torch.randn(*s, generator=g) * 0.01
            x[x.abs() < 0.0005] = 0.0            # exact zeros
            if t == 4: x.view(-1)[::97] *= 30.0   # outliers
            step[n] = x
        res.append(step)
    return res

def trace(name, make_opt, hparams, seed, producer):
    g = torch.Generator().manual_seed(seed + 1)
    params = {n: torch.nn.Parameter(torch.randn(*s, generator=g) * 0.1) for n, s in SHAPES.items()}
    tensors = {f"{n}.init": p.detach().clone() for n, p in params.items()}
    opt = make_opt(list(params.values()))
    for t, gs in enumerate(grads(seed), 1):
        for n, p in params.items(): p.grad = gs[n].clone(); tensors[f"{n}.grad.{t}"] = gs[n].clone()
        opt.step()
        for n, p in params.items(): tensors[f"{n}.param.{t}"] = p.detach().clone()
    meta = {"format": "optim-trace-1", "optim": name, "hparams": json.dumps(hparams), "steps": str(STEPS),
            "params": json.dumps(list(SHAPES)), "groups": json.dumps([{"params": list(SHAPES)}]),
            "producer": producer, "metric": "max over every element of every param after every step of "
            "|ours - ref| / (1e-3 + |ref|)", "tolerance": "1e-4"}
    path = os.path.join(out, f"{name}_{seed}.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("wrote", path)

hp = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}
import torchao
from torchao.optim import AdamW8bit, AdamW4bit
for seed in (1, 2):
    trace("adamw_torch_8bit", lambda ps: AdamW8bit(ps, lr=1e-3, weight_decay=0.01, block_size=256), dict(hp, block_size=256),
          seed, f"torchao {torchao.__version__} AdamW8bit(block_size=256)")
    trace("adamw_torch_4bit", lambda ps: AdamW4bit(ps, lr=1e-3, weight_decay=0.01, block_size=256), dict(hp, block_size=256),
          seed, f"torchao {torchao.__version__} AdamW4bit(block_size=256)")
try:
    import bitsandbytes as bnb
    for seed in (1, 2):
        trace("adamw_bnb_8bit", lambda ps: bnb.optim.AdamW8bit(ps, lr=1e-3, weight_decay=0.01), hp, seed,
              f"bitsandbytes {bnb.__version__} AdamW8bit on CPU")
        trace("lion_8bit", lambda ps: bnb.optim.Lion8bit(ps, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1),
              {"lr": 1e-4, "betas": [0.9, 0.99], "weight_decay": 0.1}, seed, f"bitsandbytes {bnb.__version__} Lion8bit on CPU")
except Exception as e:
    print("bitsandbytes:", type(e).__name__, str(e)[:200])
