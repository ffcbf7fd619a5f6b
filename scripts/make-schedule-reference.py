"""Writes tests/data/schedules.json: the learning rate transformers.get_scheduler gives at every step for
each scheduler and option set that tests/test_schedule.c checks. Needs torch and transformers (the tests do not).
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
import transformers
json.dump({"producer": f"transformers {transformers.__version__} get_scheduler, torch {torch.__version__}", "schedules": out}, open("/work/main/tests/data/schedules.json", "w"))
print(len(out))
