"""Writes tests/data/auto_batch.json: the per-device batch sizes the Hugging Face Trainer tries under
auto_find_batch_size=True (accelerate's find_executable_batch_size) when every size it tries runs out of memory,
for starting sizes 1-130, 256, 1000 and 4096, until it gives up ("reached zero"). tests/test_train.c holds
leantrain's lt_auto_batch_next (src/train/memplan.c) to these lists. Needs accelerate and torch (the tests do not).
usage: python3 scripts/make-auto-batch-reference.py"""
import json, os
import accelerate
from accelerate.utils import find_executable_batch_size

STARTS = list(range(1, 131)) + [256, 1000, 4096]


def tried_from(start):
    tried = []

    @find_executable_batch_size(starting_batch_size=start)
    def run(batch_size):
        tried.append(batch_size)
        raise RuntimeError("CUDA out of memory.")  # what accelerate's should_reduce_batch_size recognises

    try:
        run()
    except RuntimeError as e:
        assert "reached zero" in str(e), e
    return tried


out = {"accelerate": accelerate.__version__, "sequences": {str(s): tried_from(s) for s in STARTS}}
path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "auto_batch.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print(f"{path}: {len(STARTS)} starting sizes")
