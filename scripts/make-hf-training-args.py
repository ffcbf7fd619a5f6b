"""Writes tests/data/hf_training_args.json: a TrainingArguments object of transformers, as its to_json_string()
writes it (every field, the defaults included), for a run that tests/cli/train_flags.sh also gives leantrain as
flags: `leantrain train tests/data/hf_training_args.json` must take the Trainer's whole dump (its fields without an
effect here at their defaults) and make the same run as those flags. Needs transformers (the tests do not).
usage: python3 scripts/make-hf-training-args.py"""
import json
import os

import transformers
from transformers import TrainingArguments

args = TrainingArguments(
    output_dir="hf-args-run",
    do_train=True,
    learning_rate=3e-3,
    per_device_train_batch_size=8,
    gradient_accumulation_steps=2,
    max_steps=4,
    lr_scheduler_type="cosine",
    warmup_steps=1,
    weight_decay=0.1,
    logging_steps=1,
    eval_strategy="steps",
    eval_steps=2,
    save_steps=2,
    seed=7,
    optim="adamw_torch",
    report_to="none",
    dataloader_num_workers=2,
    use_cpu=True,
)
d = json.loads(args.to_json_string())  # every key a flag: no room for a comment (transformers 5.24 wrote it)
out = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "hf_training_args.json")
with open(out, "w") as f:
    json.dump(d, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"wrote {out}: {len(d)} fields (transformers {transformers.__version__})")
