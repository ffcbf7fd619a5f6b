"""Writes tests/data/schedules.json: the learning rate transformers.get_scheduler gives at every step for
each scheduler and option set that tests/test_schedule.c checks, and for reduce_lr_on_plateau the lr after each
step(metric) of fixed metric sequences. Needs torch and transformers (the tests do not).
usage: python3 scripts/make-schedule-reference.py"""
import json, torch
from transformers import get_scheduler
out = []
def rec(name, W, N, lr, kwargs):
    p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=lr)
    s = get_scheduler(name, opt, num_warmup_steps=W, num_training_steps=N, scheduler_specific_kwargs=kwargs)
    lrs = []
    for t in range(N + 5):
        lrs.append(opt.param_groups[0]["lr"]); opt.step(); s.step()
    kw = ",".join(f"{k}={v}" for k, v in kwargs.items())
    out.append({"name": name, "warmup": W, "total": N, "lr": lr, "kwargs": kw, "lrs": lrs})
for W, N in [(0, 50), (10, 100), (7, 33)]:
    for name in ["linear", "cosine", "cosine_with_restarts", "constant", "constant_with_warmup", "inverse_sqrt"]:
        rec(name, W, N, 3e-4, {})
    rec("polynomial", W, N, 3e-4, {"power": 2.0, "lr_end": 1e-6})
    rec("polynomial", W, N, 3e-4, {})
    rec("cosine_with_restarts", W, N, 3e-4, {"num_cycles": 3})
    rec("cosine_with_min_lr", W, N, 3e-4, {"min_lr": 3e-5})
    rec("cosine_with_min_lr", W, N, 3e-4, {"min_lr_rate": 0.2})
    rec("warmup_stable_decay", W, N, 3e-4, {"num_decay_steps": 12})
    rec("warmup_stable_decay", W, N, 3e-4, {"num_decay_steps": 12, "decay_type": "1-sqrt", "min_lr_ratio": 0.1, "warmup_type": "cosine"})
    rec("inverse_sqrt", W, N, 3e-4, {"timescale": 25})
    rec("cosine_warmup_with_min_lr", W, N, 3e-4, {"min_lr_rate": 0.1})
    rec("cosine_warmup_with_min_lr", W, N, 3e-4, {"min_lr": 3e-5, "warmup_lr_rate": 0.05, "num_cycles": 0.75})
# reduce_lr_on_plateau: the lr after each scheduler.step(metric), for metric sequences with rises and small
# improvements (a fixed pseudo-random walk) and then a long plateau, under torch's defaults and other kwargs
plateaus = []
def walk(n, seed):
    x, v, out = seed, 5.0, []
    for i in range(n):
        x = (x * 1103515245 + 12345) % 2**31
        r = x / 2**31
        v = v - 0.08 * r + 0.05 * (r > 0.6) - 0.001 * (i % 7 == 0)
        out.append(round(v, 6) if i % 5 else round(v + 0.3, 6))
    return out
for kwargs, seed in [({}, 1), ({"factor": 0.5, "patience": 2, "cooldown": 1, "threshold": 0.01}, 2),
                     ({"mode": "max", "threshold_mode": "abs", "threshold": 0.05, "patience": 1, "min_lr": 1e-5}, 3),
                     ({"eps": 2e-5, "factor": 0.9, "patience": 0, "min_lr": 2e-4}, 4)]:
    p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=3e-4)
    s = get_scheduler("reduce_lr_on_plateau", opt, scheduler_specific_kwargs=kwargs)
    metrics, lrs = walk(30, seed) + [10.0 + 0.001 * (i % 3) for i in range(40)], []  # then a long plateau
    for m in metrics:
        s.step(m); lrs.append(opt.param_groups[0]["lr"])
    plateaus.append({"kwargs": ",".join(f"{k}={v}" for k, v in kwargs.items()), "lr": 3e-4, "metrics": metrics, "lrs": lrs})
# greedy (transformers' GreedyLR): the lr after each scheduler.step(metric), for the walk above, then a long
# improving stretch (increases), then a plateau (decreases down to min_lr and, with a small reset_start, resets),
# under its defaults and kwargs that reach cooldown, warmup, the bounds, max mode, relative thresholds and smoothing
greedy = []
for kwargs, seed in [({}, 5),
                     ({"factor": 0.5, "patience": 1, "min_lr": 1e-5, "max_lr": 1e-3, "cooldown": 1, "warmup": 2,
                       "reset_start": 3}, 6),
                     ({"mode": "max", "threshold_mode": "rel", "threshold": 0.01, "patience": 2, "smooth": True,
                       "window_size": 4, "min_lr": 1e-5}, 7),
                     ({"smooth": True, "window_size": 3, "patience": 0, "factor": 0.8, "min_lr": 1e-4, "reset_start": 2,
                       "eps": 1e-12}, 8)]:
    p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=3e-4)
    s = get_scheduler("greedy", opt, scheduler_specific_kwargs=kwargs)
    metrics = walk(30, seed) + [3.0 - 0.01 * i for i in range(30)] + [10.0 + 0.001 * (i % 3) for i in range(40)]
    if kwargs.get("mode") == "max":
        metrics = [-m for m in metrics]
    lrs = []
    for m in metrics:
        s.step(m); lrs.append(opt.param_groups[0]["lr"])
    greedy.append({"kwargs": ",".join(f"{k}={v}" for k, v in kwargs.items()), "lr": 3e-4, "metrics": metrics, "lrs": lrs})
import transformers
import os
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "schedules.json")
json.dump({"producer": f"transformers {transformers.__version__} get_scheduler, torch {torch.__version__}",
           "schedules": out, "plateaus": plateaus, "greedy": greedy}, open(path, "w"))
print(len(out), "schedules,", len(plateaus), "plateau runs,", len(greedy), "greedy runs")
