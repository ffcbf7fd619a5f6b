"""Writes tests/data/trainer_events.json: at which optimizer steps the Hugging Face Trainer itself logs the
training loss, evaluates and saves a checkpoint, for a set of TrainingArguments (strategies, *_steps as whole
numbers and ratios, logging_first_step, eval_delay, epochs); and for the best model (load_best_model_at_end,
save_strategy best, save_total_limit) each evaluation's loss, the best step and the checkpoints left at the end. tests/test_train.c holds leantrain's event rules
(src/train/events.c) to these lists. A tiny model on the CPU; needs torch, transformers and accelerate (the tests
do not).
usage: python3 scripts/make-trainer-events.py"""
import json, os, tempfile
import torch
import transformers
from transformers import Trainer, TrainerCallback, TrainingArguments

N_SAMPLES, BATCH, ACCUM = 32, 4, 2  # 32 / 4 / 2 = 4 optimizer steps per epoch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x, labels=None):
        loss = ((self.w * x - labels) ** 2).mean()
        return {"loss": loss, "logits": self.w * x}


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return N_SAMPLES

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i % 5)]), "labels": torch.tensor([1.0])}


class Events(TrainerCallback):
    def __init__(self):
        self.log, self.eval, self.save = [], [], []

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.log.append(state.global_step)

    def on_evaluate(self, args, state, control, **kw):
        self.eval.append(state.global_step)

    def on_save(self, args, state, control, **kw):
        self.save.append(state.global_step)


# each case: the flags as leantrain's command line spells them (the Trainer's names and values)
CASES = [
    {"max_steps": 10, "logging_steps": 3, "eval_strategy": "steps", "eval_steps": 3, "save_steps": 3,
     "logging_first_step": True},
    {"max_steps": 10, "logging_steps": 0.25, "eval_strategy": "steps", "eval_steps": 0.25, "save_steps": 0.25},
    {"max_steps": 10, "logging_steps": 0.3, "eval_strategy": "steps", "eval_steps": 0.5, "save_steps": 0.2},
    {"max_steps": 12, "logging_steps": 5, "eval_strategy": "steps", "eval_steps": 4, "save_steps": 6},
    {"max_steps": 10, "logging_steps": 2, "eval_strategy": "steps", "eval_steps": 2, "eval_delay": 5, "save_steps": 0},
    {"max_steps": 7, "logging_steps": 1, "eval_strategy": "no", "save_strategy": "no"},
    {"num_train_epochs": 3, "logging_strategy": "epoch", "eval_strategy": "epoch", "save_strategy": "epoch"},
    {"num_train_epochs": 3, "logging_steps": 3, "eval_strategy": "epoch", "eval_delay": 2, "save_strategy": "steps",
     "save_steps": 5},
    {"max_steps": 10, "logging_strategy": "epoch", "eval_strategy": "epoch", "save_strategy": "epoch"},
    {"num_train_epochs": 2, "logging_strategy": "no", "eval_strategy": "steps", "eval_steps": 3, "save_strategy": "epoch",
     "logging_first_step": True},
]

def accuracy(p):
    """an eval_accuracy for metric_for_best_model accuracy: predictions within 0.5 of the label"""
    return {"accuracy": float((abs(p.predictions - p.label_ids) < 0.5).mean())}


def train(case, callback, lr, **extra):
    """Trains the tiny model with the case's flags (save_strategy steps unless given); returns the checkpoint
    steps left in output_dir and the Trainer's best_global_step. With metric_for_best_model accuracy the
    evaluation computes it (compute_metrics), and greater_is_better is left to the Trainer's default."""
    with tempfile.TemporaryDirectory() as d:
        kw = dict(case, **extra)
        kw.setdefault("save_strategy", "steps")
        args = TrainingArguments(output_dir=d, per_device_train_batch_size=BATCH, per_device_eval_batch_size=BATCH,
                                 gradient_accumulation_steps=ACCUM, learning_rate=lr, report_to="none",
                                 use_cpu=True, disable_tqdm=True, save_only_model=True, **kw)
        acc = case.get("metric_for_best_model") == "accuracy"
        t = Trainer(model=Tiny(), args=args, train_dataset=Data(), eval_dataset=Data(), callbacks=[callback],
                    compute_metrics=accuracy if acc else None)
        t.train()
        kept = sorted(int(n.split("-")[1]) for n in os.listdir(d) if n.startswith("checkpoint-"))
        return kept, t.state.best_global_step


out = []
for case in CASES:
    ev = Events()
    train(case, ev, 1e-3)
    out.append({"flags": case, "steps_per_epoch": N_SAMPLES // BATCH // ACCUM, "log": ev.log, "eval": ev.eval,
                "save": ev.save})
    print(case, "log", ev.log, "eval", ev.eval, "save", ev.save)

# the best model: each evaluation's value of the metric (eval_loss, or eval_accuracy), the best step the Trainer
# settled on and the checkpoints save_total_limit left, with load_best_model_at_end (a learning rate that makes
# the loss go up and down)
class Evals(TrainerCallback):
    def __init__(self):
        self.losses = []

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        key = "eval_accuracy" if args.metric_for_best_model == "accuracy" else "eval_loss"
        self.losses.append([state.global_step, metrics[key]])


BEST = [
    {"max_steps": 12, "eval_strategy": "steps", "eval_steps": 2, "save_steps": 2, "save_total_limit": 1,
     "load_best_model_at_end": True},
    {"max_steps": 12, "eval_strategy": "steps", "eval_steps": 2, "save_steps": 2, "save_total_limit": 1,
     "load_best_model_at_end": True, "greater_is_better": True, "metric_for_best_model": "loss"},
    {"max_steps": 12, "eval_strategy": "steps", "eval_steps": 2, "save_steps": 4, "save_total_limit": 2,
     "load_best_model_at_end": True},
    {"max_steps": 12, "eval_strategy": "steps", "eval_steps": 1, "save_strategy": "best", "save_total_limit": 2,
     "metric_for_best_model": "loss"},
    {"max_steps": 12, "eval_strategy": "steps", "eval_steps": 3, "save_steps": 3, "save_total_limit": 3,
     "load_best_model_at_end": True, "greater_is_better": True},
    {"max_steps": 12, "eval_strategy": "steps", "eval_steps": 1, "save_strategy": "best", "save_total_limit": 2,
     "metric_for_best_model": "accuracy"},
    {"max_steps": 12, "eval_strategy": "steps", "eval_steps": 2, "save_steps": 2, "save_total_limit": 1,
     "load_best_model_at_end": True, "metric_for_best_model": "accuracy", "greater_is_better": False},
]
best_out = []
for case in BEST:
    ev = Evals()
    kept, best = train(case, ev, 0.7, logging_steps=100)
    best_out.append({"flags": case, "evals": ev.losses, "best_global_step": best, "kept": kept})
    print(case, "evals", [round(l, 4) for _, l in ev.losses], "best", best, "kept", kept)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "trainer_events.json")
json.dump({"producer": f"transformers {transformers.__version__} Trainer, torch {torch.__version__}",
           "cases": out, "best": best_out}, open(path, "w"), indent=1)
