"""Writes tests/data/top1.json: rows of logits and torch.argmax's index for each, the top-1 prediction run_clm's
eval_accuracy compares with the labels (its preprocess_logits_for_metrics is logits.argmax(dim=-1)). The rows are
made to test the rule at its edges: bf16 values (many exact ties, as bf16 logits have), a row's maximum repeated,
NaNs (torch's argmax takes the first NaN), infinities, rows all equal or all -inf. Values are stored as float32
bit patterns (JSON has no NaN). tests/test_gpt2.c holds lt_nn_top1_hits to the indices. Needs torch; the tests do
not.
usage: python3 scripts/make-top1-reference.py"""
import json, os
import torch

torch.manual_seed(3)
rows = []


def add(x):
    x = x.float()
    rows.append(x)


for V in (37, 515):
    for _ in range(24 if V == 37 else 4):  # coarse bf16 values: ties among the largest are common
        add((torch.randn(V) * 3).to(torch.bfloat16))
    for _ in range(6):  # the maximum repeated at 2-4 places
        x = torch.randn(V)
        m = x.max().item() + 1.0
        for i in torch.randperm(V)[: int(torch.randint(2, 5, ()))]:
            x[i] = m
        add(x)
    for k in range(6):  # NaNs: one or two, before or after the maximum
        x = torch.randn(V)
        x[int(torch.randint(0, V, ()))] = float("nan")
        if k % 2:
            x[int(torch.randint(0, V, ()))] = float("nan")
        add(x)
    x = torch.randn(V); x[5] = float("inf"); x[V - 3] = float("inf"); add(x)
    x = torch.randn(V); x[0] = float("-inf"); x[V - 1] = float("inf"); add(x)
    x = torch.randn(V); x[V - 1] = float("nan"); x[2] = float("inf"); add(x)
    add(torch.full((V,), float("-inf")))
    add(torch.full((V,), 0.25))
    x = torch.full((V,), float("-inf")); x[V // 2] = -1e30; add(x)

out = []
for x in rows:
    for dt in (torch.float32, torch.bfloat16):  # the rule holds for either dtype of the logits
        if dt == torch.bfloat16 and not torch.equal(x.to(dt).float().nan_to_num(7), x.nan_to_num(7)):
            continue
        a = int(x.to(dt).argmax().item())
        if dt == torch.bfloat16:
            assert a == out[-1]["argmax"], "bf16 and fp32 argmax differ on the same values"
            continue
        out.append({"bits": x.view(torch.int32).tolist(), "argmax": a})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "top1.json")
with open(path, "w") as f:
    json.dump({"producer": f"torch {torch.__version__} argmax", "rows": out}, f, separators=(",", ":"))
    f.write("\n")
print(len(out), "rows ->", path)
