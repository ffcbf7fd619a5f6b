"""Writes optim-trace-1 files (the format of ../shared/golden) from the installed torch / transformers, with
other shapes, seeds and hyperparameters than the shared traces: a cross-check that `leantrain replay` holds
beyond the shared files. Needs torch, transformers, safetensors; the project's build and tests never run it.
usage: python3 scripts/make-optim-traces.py OUTDIR [SEED]"""
import json, os, sys
import torch
from safetensors.torch import save_file

out = sys.argv[1]; seed = int(sys.argv[2]) if len(sys.argv) > 2 else 5
os.makedirs(out, exist_ok=True)
SHAPES = {"emb": (50, 33), "b": (17,), "k4": (2, 3, 12, 20), "tiny": (7, 5), "row": (1, 300)}
STEPS = 10

def run(name, optim_name, make, hparams, groups=None, lr_per_step=None, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    ps = {n: torch.nn.Parameter((torch.randn(*s, generator=g) * 0.2).to(dtype)) for n, s in SHAPES.items()}
    grads = [{n: torch.randn(*s, generator=g) * 0.05 for n, s in SHAPES.items()} for _ in range(STEPS)]
    for t, gs in enumerate(grads):
        for n, x in gs.items():
            x[x.abs() < 0.004] = 0.0
            if t == 3: x.view(-1)[::53] *= 40.0
    def trace(dt):
        params = {n: torch.nn.Parameter(p.detach().clone().to(dt)) for n, p in ps.items()}
        if groups:
            opt = make([{"params": [params[n] for n in gr["params"]], **gr.get("overrides", {})} for gr in groups])
        else:
            opt = make(list(params.values()))
        hist = []
        for t in range(STEPS):
            if lr_per_step:
                for pg in opt.param_groups: pg["lr"] = lr_per_step[t]
            for n, p in params.items(): p.grad = grads[t][n].clone().to(dt)
            opt.step()
            hist.append({n: p.detach().clone().float() for n, p in params.items()})
        return params, opt, hist
    p32, opt, hist = trace(torch.float32)
    _, _, hist64 = trace(torch.float64)
    worst = max(((a[n] - b[n].float()).abs() / (1e-3 + b[n].float().abs())).max().item()
                for a, b in zip(hist, hist64) for n in SHAPES)
    tensors = {f"{n}.init": p.detach().clone() for n, p in ps.items()}
    for t in range(STEPS):
        for n in SHAPES:
            tensors[f"{n}.grad.{t+1}"] = grads[t][n]; tensors[f"{n}.param.{t+1}"] = hist[t][n]
    names = {id(p): n for n, p in p32.items()}
    for p, st in opt.state.items():
        for k, v in st.items():
            if torch.is_tensor(v) and v.numel() > 1 or (torch.is_tensor(v) and k not in ("step",) and v.dim() > 0):
                tensors[f"{names[id(p)]}.state.{k}"] = v.detach().clone().float()
    meta = {"format": "optim-trace-1", "optim": optim_name, "hparams": json.dumps(hparams), "steps": str(STEPS),
            "params": json.dumps(list(SHAPES)), "groups": json.dumps(groups or [{"params": list(SHAPES)}]),
            "producer": f"torch {torch.__version__} {name}", "fp32_vs_fp64_max_rel": f"{worst:.3e}",
            "metric": "max over every element of every param after every step of |ours - ref| / (1e-3 + |ref|)",
            "tolerance": f"{max(8 * worst, 1e-6):.3e}"}
    if lr_per_step: meta["lr_per_step"] = json.dumps(lr_per_step)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, f"{name}_{seed}.safetensors"), metadata=meta)
    print(f"{name}: fp32 vs fp64 {worst:.3e}")

O = torch.optim
run("adamw_wd", "adamw_torch", lambda ps: O.AdamW(ps, lr=3e-3, betas=(0.85, 0.98), eps=1e-7, weight_decay=0.05, foreach=False),
    {"lr": 3e-3, "betas": [0.85, 0.98], "eps": 1e-7, "weight_decay": 0.05})
run("adamw_ams_sched", "adamw_torch", lambda ps: O.AdamW(ps, lr=1e-2, weight_decay=0.02, amsgrad=True, foreach=False),
    {"lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.02, "amsgrad": True},
    groups=[{"params": ["emb", "k4", "row"]}, {"params": ["b", "tiny"], "overrides": {"weight_decay": 0.0}}],
    lr_per_step=[1e-3 * (i + 1) for i in range(STEPS)])
run("adam_ams", "adam", lambda ps: O.Adam(ps, lr=5e-3, weight_decay=0.01, amsgrad=True, foreach=False),
    {"lr": 5e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01, "amsgrad": True})
run("sgd_damp", "sgd", lambda ps: O.SGD(ps, lr=0.03, momentum=0.8, dampening=0.3, weight_decay=1e-3, foreach=False),
    {"lr": 0.03, "momentum": 0.8, "dampening": 0.3, "weight_decay": 1e-3, "nesterov": False})
run("rmsprop_centered", "rmsprop", lambda ps: O.RMSprop(ps, lr=2e-3, alpha=0.95, eps=1e-6, weight_decay=1e-2, momentum=0.7, centered=True, foreach=False),
    {"lr": 2e-3, "alpha": 0.95, "eps": 1e-6, "weight_decay": 1e-2, "momentum": 0.7, "centered": True})
run("adagrad_decay", "adagrad", lambda ps: O.Adagrad(ps, lr=0.05, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1, eps=1e-9, foreach=False),
    {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 1e-3, "initial_accumulator_value": 0.1, "eps": 1e-9})
from transformers.optimization import Adafactor
run("adafactor_all", "adafactor", lambda ps: Adafactor(ps, lr=None, beta1=0.8, weight_decay=0.01, clip_threshold=0.5, decay_rate=-0.7, scale_parameter=True, relative_step=True, warmup_init=True),
    {"lr": None, "eps": [1e-30, 1e-3], "clip_threshold": 0.5, "decay_rate": -0.7, "beta1": 0.8, "weight_decay": 0.01, "scale_parameter": True, "relative_step": True, "warmup_init": True})
run("adafactor_trainer", "adafactor", lambda ps: Adafactor(ps, lr=2e-3, scale_parameter=False, relative_step=False),
    {"lr": 2e-3, "eps": [1e-30, 1e-3], "clip_threshold": 1.0, "decay_rate": -0.8, "beta1": None, "weight_decay": 0.0, "scale_parameter": False, "relative_step": False, "warmup_init": False})
