"""Writes tests/data/runclm/: what transformers' run_clm.py makes of a text file, for tests/test_data.c and
tests/cli/runclm.sh.

- text.txt, validation.txt: made-up text with what a line reader can get wrong: blank lines in runs, lines
  of spaces, leading and trailing whitespace, CR LF and lone CR line ends, form feeds, U+2028 and U+0085 inside
  lines, non-ASCII text, a very long line, no newline at the end. 2650 lines, so that 1% of them is 26.5
  (datasets rounds half to even) and the 1000-line batches of group_texts leave remainders.
- blocks.json: run_clm's data pipeline run by the real libraries: datasets' "text" loader (keep_linebreaks
  True), the train[:p%] / train[p%:] split when there is no validation file, the tokenizer on every line, and
  run_clm's group_texts mapped in batches of 1000 lines (num_proc shards each batched on their own); for
  several tokenizers, block sizes, percentages, num_proc and keep_linebreaks, the blocks' ids of both splits.
- model/ (config.json, model.safetensors): a tiny random GPT-2 (vocab 1000, dropout 0), and in blocks.json's
  "trainer": what transformers' Trainer reported with it on run_clm's blocks of text.txt (small tokenizer,
  block_size 32): evaluate() before and after one training step on the first 4 training blocks (batch 4, so
  the sampler's order does not matter), the step's loss and grad_norm, eval_loss and run_clm's accuracy (argmax
  of the logits against the next token, block_size - 1 positions a block), and beside eval_loss the model's own
  loss on the same batches ("model_loss"). transformers 5.24's Trainer divides a batch's summed loss by the
  count of all its labels, block_size a block, not by the block_size - 1 positions the loss has (its shifted
  count applies only to models whose loss_type is set, and GPT-2's is None): the loss, eval_loss and gradients
  it reports are (block_size - 1) / block_size of the model's mean (31/32 here). leantrain reports the mean.
  And "curve": 6 optimizer steps over 2 epochs of the first 24 training blocks (batch 4 x accumulation 2) in the
  Trainer's order (accelerate's seedable sampler: torch.randperm from seed + epoch), each step's logged loss and
  the model's own validation loss after them. And "partial": the same over the first 18 blocks, which do not
  fill the last batch (batch 4 x accumulation 3, 3 epochs): the Trainer keeps the short batch (2 blocks) and
  ends the epoch's last step after it (2 batches, not 3, a mean over their 6 blocks): 2 steps an epoch, each
  step's loss and logged epoch, and the validation loss after them. And "drop_last": the same with
  dataloader_drop_last (the short batch left out: 4 batches an epoch, the second step of one).
- randperm.json: torch.randperm(n, generator=torch.Generator().manual_seed(seed)) for several n and seeds (the
  first and last 8 values of the long ones), for leantrain's copy of that order (src/util/mt19937.c).

Needs torch, transformers and datasets; the tests do not.
usage: python3 scripts/make-runclm-reference.py"""
import json, os, random, shutil, tempfile
from itertools import chain

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import datasets
import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, Trainer, TrainingArguments

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
out = os.path.join(root, "tests", "data", "runclm")
os.makedirs(out, exist_ok=True)

WORDS = ("the a of and to in is was he she it they we you that this with for on as at by from not but or "
         "story little girl boy dog cat tree house happy sad big small day night sun moon friend play run "
         "jump look saw said went came found wanted loved don't can't it's I'm we'll they're 42 7 1999 "
         "3.14 100% (yes) [no] {x} #tag @name e-mail x=y+1; foo_bar() --flag ... !? \"quoted\" 'single'").split()
ODD = ["caf\u00e9 na\u00efve r\u00e9sum\u00e9", "\u65e5\u672c\u8a9e\u306e\u6587", "emoji \U0001F600 here",
       "dash \u2014 and \u201cquotes\u201d", "line\u2028separator inside", "next\u0085line inside",
       "form\x0cfeed", "vertical\x0btab", "tab\tinside\ttext", "\u00a0nbsp first"]


def make_lines(rng, n):
    lines = []
    while len(lines) < n:
        r = rng.random()
        if r < 0.12:
            lines += [""] * rng.choice((1, 1, 2, 3))
        elif r < 0.17:
            lines.append(" " * rng.randint(1, 6))
        elif r < 0.25:
            lines.append(rng.choice((" ", "  ", "    ", "\t", " \t")) + " ".join(rng.choices(WORDS, k=rng.randint(2, 6))))
        elif r < 0.30:
            lines.append(" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) + rng.choice((" ", "   ", "\t")))
        elif r < 0.36:
            lines.append(rng.choice(ODD) + " " + " ".join(rng.choices(WORDS, k=rng.randint(0, 3))))
        else:
            lines.append(" ".join(rng.choices(WORDS, k=rng.randint(1, 9))).capitalize() + rng.choice((".", ".", "!", "?", ",", "")))
    return lines[:n]


def write_text(path, lines, rng, crlf_range):
    """Line i ends with CR LF inside crlf_range, a lone CR now and then (never before an empty line: CR LF
    would join them), LF otherwise; the last line has no end."""
    parts = []
    for i, s in enumerate(lines):
        if i == len(lines) - 1:
            end = ""
        elif crlf_range[0] <= i < crlf_range[1]:
            end = "\r\n"
        elif rng.random() < 0.01 and lines[i + 1] != "":
            end = "\r"
        else:
            end = "\n"
        parts.append(s + end)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(parts))


rng = random.Random(5)
main_lines = make_lines(rng, 2650)
main_lines[1500] = " ".join(rng.choices(WORDS, k=400))  # one very long line
write_text(os.path.join(out, "text.txt"), main_lines, rng, (700, 900))
write_text(os.path.join(out, "validation.txt"), make_lines(rng, 400), rng, (0, 50))

_bpe = Tokenizer(models.BPE.from_file(os.path.join(root, "data", "gpt2", "encoder.json"),
                                      os.path.join(root, "data", "gpt2", "vocab.bpe")))
_bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's tokenizer, as the Hub's
_bpe.decoder = decoders.ByteLevel()
gpt2_tok = PreTrainedTokenizerFast(tokenizer_object=_bpe)
small_tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(root, "tests", "data", "tokenizer",
                                                                 "small-tokenizer.json"))
TOKS = {"gpt2": gpt2_tok, "small": small_tok}


def run_clm_blocks(tok, train_file, validation_file, pct, block_size, num_proc, keep_linebreaks, cache):
    """run_clm.py's data path, its calls and arguments as it makes them."""
    data_files = {"train": train_file}
    if validation_file:
        data_files["validation"] = validation_file
    kw = dict(data_files=data_files, cache_dir=cache, keep_linebreaks=keep_linebreaks)
    raw = datasets.load_dataset("text", **kw)
    if "validation" not in raw.keys():
        raw["validation"] = datasets.load_dataset("text", split=f"train[:{pct}%]", **kw)
        raw["train"] = datasets.load_dataset("text", split=f"train[{pct}%:]", **kw)
    tokenized = raw.map(lambda ex: tok(ex["text"]), batched=True, num_proc=num_proc, remove_columns=["text"])

    def group_texts(examples):
        concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}
        total = len(concatenated[list(examples.keys())[0]])
        total = (total // block_size) * block_size
        result = {k: [t[i:i + block_size] for i in range(0, total, block_size)] for k, t in concatenated.items()}
        result["labels"] = result["input_ids"].copy()
        return result

    lm = tokenized.map(group_texts, batched=True, num_proc=num_proc)
    return raw, lm


CASES = [
    {"tokenizer": "gpt2", "block_size": 16, "pct": 5, "num_proc": 1, "validation_file": None},
    {"tokenizer": "gpt2", "block_size": 7, "pct": 1, "num_proc": 3, "validation_file": None},
    {"tokenizer": "small", "block_size": 16, "pct": 5, "num_proc": 1, "validation_file": "validation.txt"},
    {"tokenizer": "gpt2", "block_size": 16, "pct": 5, "num_proc": 1, "validation_file": None,
     "keep_linebreaks": False},
    {"tokenizer": "small", "block_size": 32, "pct": 5, "num_proc": 1, "validation_file": None},
]

cache = tempfile.mkdtemp()
results = []
lm_trainer = None
for c in CASES:
    vf = os.path.join(out, c["validation_file"]) if c["validation_file"] else None
    raw, lm = run_clm_blocks(TOKS[c["tokenizer"]], os.path.join(out, "text.txt"), vf, c["pct"], c["block_size"],
                             c["num_proc"], c.get("keep_linebreaks", True), cache)
    r = dict(c)
    r["lines"] = {"train": raw["train"].num_rows, "validation": raw["validation"].num_rows}
    r["train"] = list(chain(*lm["train"]["input_ids"]))
    r["validation"] = list(chain(*lm["validation"]["input_ids"]))
    print(c, r["lines"], len(r["train"]) // c["block_size"], len(r["validation"]) // c["block_size"])
    results.append(r)
    if c["tokenizer"] == "small" and c["block_size"] == 32:
        lm_trainer = lm

# the Trainer on the last case's blocks
torch.manual_seed(3)
cfg = GPT2Config(vocab_size=1000, n_positions=32, n_embd=32, n_layer=2, n_head=2, embd_pdrop=0.0, resid_pdrop=0.0,
                 attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
model = GPT2LMHeadModel(cfg)
model_dir = os.path.join(out, "model")
model.save_pretrained(model_dir, safe_serialization=True)
for junk in ("generation_config.json",):
    p = os.path.join(model_dir, junk)
    if os.path.exists(p):
        os.remove(p)
# the Trainer gets the model as leantrain reads it: a fresh model's tied head and its saved form can differ
model = GPT2LMHeadModel.from_pretrained(model_dir)


def preprocess_logits_for_metrics(logits, labels):
    return logits.argmax(dim=-1)


def compute_metrics(eval_preds):  # run_clm's, with the accuracy metric's mean written out
    preds, labels = eval_preds
    labels = labels[:, 1:].reshape(-1)
    preds = preds[:, :-1].reshape(-1)
    return {"accuracy": float((preds == labels).mean())}


tmp_out = tempfile.mkdtemp()
args = TrainingArguments(output_dir=tmp_out, per_device_train_batch_size=4, per_device_eval_batch_size=8,
                         max_steps=1, learning_rate=1e-2, weight_decay=0.0, logging_steps=1, report_to=[],
                         save_strategy="no", eval_strategy="no", seed=42, use_cpu=True, dataloader_num_workers=0)
trainer = Trainer(model=model, args=args, train_dataset=lm_trainer["train"].select(range(4)),
                  eval_dataset=lm_trainer["validation"], compute_metrics=compute_metrics,
                  preprocess_logits_for_metrics=preprocess_logits_for_metrics)


def model_loss():
    """GPT2LMHeadModel's own loss (the mean cross-entropy of block_size - 1 positions a block) over the
    validation blocks, batch by batch as evaluate() runs them, averaged as it averages its batches."""
    model.eval()
    ids = torch.tensor(lm_trainer["validation"]["input_ids"])
    with torch.no_grad():
        losses = [model(b, labels=b).loss.item() * len(b) for b in ids.split(8)]
    return sum(losses) / len(ids)


before = trainer.evaluate()
before["model_loss"] = model_loss()
trainer.train()
step = [h for h in trainer.state.log_history if "loss" in h][0]
after = trainer.evaluate()
after["model_loss"] = model_loss()
print("before", before, "\nstep", step, "\nafter", after)

def trainer_run(blocks, accum, epochs, drop_last=False):
    """The Trainer on the first `blocks` training blocks (batch 4 x accumulation `accum`, `epochs` epochs, no
    clipping: the Trainer's gradients are 31/32 of the mean's, so a clipping threshold between the two norms
    would clip one run and not the other; AdamW's step hardly sees a common scale of its gradients) from the
    saved model: its log entries with a loss, and the model's own validation loss after them."""
    global model
    model = GPT2LMHeadModel.from_pretrained(model_dir)
    targs = TrainingArguments(output_dir=tmp_out, per_device_train_batch_size=4, gradient_accumulation_steps=accum,
                              num_train_epochs=epochs, learning_rate=3e-3, weight_decay=0.0, max_grad_norm=0.0,
                              logging_steps=1, report_to=[], save_strategy="no", eval_strategy="no", seed=42,
                              use_cpu=True, dataloader_num_workers=0, dataloader_drop_last=drop_last)
    t = Trainer(model=model, args=targs, train_dataset=lm_trainer["train"].select(range(blocks)))
    t.train()
    return [h for h in t.state.log_history if "loss" in h], model_loss()


# several steps in the Trainer's order: 24 blocks, batch 4 x accumulation 2, 2 epochs (6 optimizer steps)
logged2, curve_eval = trainer_run(24, 2, 2)
curve = [h["loss"] for h in logged2]
print("curve", curve, "eval after", curve_eval)

# blocks that do not fill the last batch: 18 blocks, batch 4 x accumulation 3, 3 epochs. The Trainer's dataloader
# keeps the short batch (dataloader_drop_last False): 5 batches an epoch (4 4 4 4 2); 2 optimizer steps an epoch,
# the second of 2 batches (its "remainder"), 4 blocks and 2; each step's loss divided by its own label count
# (num_items_in_batch), so the second step is the mean over its 6 blocks, not the mean of its 2 batches' means
logged3, partial_eval = trainer_run(18, 3, 3)
print("partial", [(h["loss"], h["epoch"]) for h in logged3], "eval after", partial_eval)
# the same with dataloader_drop_last: 4 whole batches an epoch (2 blocks left out), 2 steps an epoch, the second of
# one batch
logged4, drop_eval = trainer_run(18, 3, 3, drop_last=True)
print("drop_last", [(h["loss"], h["epoch"]) for h in logged4], "eval after", drop_eval)

keep = ("eval_loss", "eval_accuracy", "model_loss")
trainer_ref = {"case": len(results) - 1, "model": "model", "per_device_train_batch_size": 4,
               "per_device_eval_batch_size": 8, "max_train_samples": 4, "max_steps": 1, "learning_rate": 1e-2,
               "weight_decay": 0.0, "optim": args.optim.value if hasattr(args.optim, "value") else str(args.optim),
               "before": {k: before[k] for k in keep}, "loss": step["loss"],
               "grad_norm": step["grad_norm"],
               "after": {k: after[k] for k in keep},
               "curve": {"max_train_samples": 24, "per_device_train_batch_size": 4,
                         "gradient_accumulation_steps": 2, "num_train_epochs": 2, "learning_rate": 3e-3,
                         "max_grad_norm": 0.0, "losses": curve, "eval_model_loss": curve_eval},
               "partial": {"max_train_samples": 18, "per_device_train_batch_size": 4,
                           "gradient_accumulation_steps": 3, "num_train_epochs": 3, "learning_rate": 3e-3,
                           "max_grad_norm": 0.0, "losses": [h["loss"] for h in logged3],
                           "epochs": [h["epoch"] for h in logged3], "eval_model_loss": partial_eval},
               "drop_last": {"max_train_samples": 18, "per_device_train_batch_size": 4,
                             "gradient_accumulation_steps": 3, "num_train_epochs": 3, "learning_rate": 3e-3,
                             "max_grad_norm": 0.0, "dataloader_drop_last": True,
                             "losses": [h["loss"] for h in logged4], "epochs": [h["epoch"] for h in logged4],
                             "eval_model_loss": drop_eval}}

with open(os.path.join(out, "blocks.json"), "w") as f:
    json.dump({"producer": f"run_clm.py's data path: datasets {datasets.__version__}, transformers "
                           f"{transformers.__version__}, torch {torch.__version__}",
               "text": "text.txt", "cases": results, "trainer": trainer_ref}, f)
    f.write("\n")
perms = []
for n, seed in ((1, 0), (2, 42), (7, 42), (100, 43), (1000, 7), (4096, 2**32 + 5), (65537, 123456789),
                (2**24 + 3, 1)):
    p = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    perms.append({"n": n, "seed": seed, "head": p[:8], "tail": p[-8:], "all": p if n <= 1000 else None})
with open(os.path.join(out, "randperm.json"), "w") as f:
    json.dump({"producer": f"torch {torch.__version__} randperm", "cases": perms}, f)
    f.write("\n")
shutil.rmtree(cache, ignore_errors=True)
shutil.rmtree(tmp_out, ignore_errors=True)
