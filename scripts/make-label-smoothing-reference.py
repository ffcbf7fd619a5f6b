"""Writes tests/data/label_smoothing.json: the Hugging Face Trainer's label-smoothed loss (--label_smoothing_factor,
transformers.trainer_pt_utils.LabelSmoother, as Trainer.compute_loss calls it for a causal LM, labels already
shifted here) on random float32 logits, and its gradient with respect to the logits by autograd, for a few sizes
and factors. tests/test_gpt2.c holds leantrain's classifier to them. Needs torch and transformers; the build and
tests never run it.
usage: python3 scripts/make-label-smoothing-reference.py [OUT.json]"""
import json, sys
import torch
from transformers.trainer_pt_utils import LabelSmoother

out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/label_smoothing.json"
torch.manual_seed(5)
cases = []
for N, V, eps, spread in [(6, 37, 0.1, 3.0), (9, 300, 0.1, 5.0), (4, 1031, 0.3, 8.0), (5, 64, 0.0, 2.0), (3, 17, 0.9, 1.0)]:
    logits = (torch.randn(N, V) * spread).float().requires_grad_(True)
    labels = torch.randint(0, V, (N,))
    loss = LabelSmoother(epsilon=eps)({"logits": logits[None]}, labels[None], shift_labels=False)
    loss.backward()
    cases.append({"N": N, "V": V, "epsilon": eps, "logits": [float(x) for x in logits.detach().reshape(-1)],
                  "labels": [int(x) for x in labels], "loss": float(loss.detach()),
                  "grad": [float(x) for x in logits.grad.reshape(-1)]})
with open(out, "w") as f:
    json.dump({"source": "transformers " + __import__("transformers").__version__ + " LabelSmoother, torch " +
               torch.__version__ + " (float32), scripts/make-label-smoothing-reference.py", "cases": cases}, f)
    f.write("\n")
print(out, len(cases), "cases")
