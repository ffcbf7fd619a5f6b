"""Writes a gpt2-trace-1 file (the format of ../shared/golden/gpt2_tiny.safetensors) from the real Hugging Face
GPT2LMHeadModel (dropout off), for a size and seed of your choice: a cross-check of `leantrain replay` beyond the
shared trace. Needs torch, transformers, safetensors; the build and tests never run it.
usage: python3 scripts/make-gpt2-trace.py OUT.safetensors [SEED] [n_layer n_embd n_head vocab n_positions B T]"""
import json, sys
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
L, C, H, V, P, B, T = (int(x) for x in sys.argv[3:10]) if len(sys.argv) > 9 else (3, 64, 8, 300, 48, 2, 33)
torch.manual_seed(seed)
cfg = GPT2Config(vocab_size=V, n_positions=P, n_embd=C, n_layer=L, n_head=H, resid_pdrop=0.0, embd_pdrop=0.0,
                 attn_pdrop=0.0, activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True)
model = GPT2LMHeadModel(cfg).float()
model.train()
with torch.no_grad():  # larger-than-init weights so the trace exercises more than the initial regime
    for n, p in model.named_parameters():
        if n.endswith("ln_1.weight") or n.endswith("ln_2.weight") or n.endswith("ln_f.weight"):
            p.add_(0.1 * torch.randn_like(p))
        elif n.endswith(".bias"):
            p.add_(0.02 * torch.randn_like(p))
inputs = torch.randint(0, V, (B, T))
targets = torch.randint(0, V, (B, T))
weights = {k.replace("transformer.", ""): v.detach().clone() for k, v in model.state_dict().items()
           if not k.startswith("lm_head") and not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
out_t = model(input_ids=inputs)
logits = out_t.logits
loss = torch.nn.functional.cross_entropy(logits.view(-1, V), targets.view(-1))
loss.backward()
grads = {f"grad.{k.replace('transformer.', '')}": p.grad.detach().clone() for k, p in model.named_parameters()}
# AdamW steps on the same batch, two groups as the Trainer makes them
decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or ".ln_" in n or "ln_f" in n)]
nodecay = [p for n, p in model.named_parameters() if n.endswith(".bias") or ".ln_" in n or "ln_f" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                        lr=3e-3, betas=(0.9, 0.95), eps=1e-8, foreach=False)
losses = []
S = 5
for s in range(S):
    opt.zero_grad()
    lg = model(input_ids=inputs).logits
    l = torch.nn.functional.cross_entropy(lg.view(-1, V), targets.view(-1))
    losses.append(l.item())
    l.backward()
    opt.step()
t = dict(weights)
t.update(grads)
t["inputs"] = inputs.to(torch.int32)
t["targets"] = targets.to(torch.int32)
t["logits"] = logits.detach()
t["loss"] = loss.detach().reshape(1)
t["train_losses"] = torch.tensor(losses, dtype=torch.float32)
import transformers
meta = {"format": "gpt2-trace-1",
        "config": json.dumps({"vocab_size": V, "n_positions": P, "n_embd": C, "n_layer": L, "n_head": H,
                              "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "tie_word_embeddings": True}),
        "batch": str(B), "seq_len": str(T),
        "train": json.dumps({"optim": "adamw_torch", "lr": 3e-3, "betas": [0.9, 0.95], "eps": 1e-8,
                             "weight_decay": {"decay": 0.1, "no_decay (biases, ln_*)": 0.0}, "steps": S}),
        "tolerance": json.dumps({"logits_max_abs": 1e-5, "loss_abs": 1e-5, "grad_max_abs_over_tensor_max_abs": 1e-5,
                                 "train_losses_abs": 1e-4}),
        "producer": f"transformers {transformers.__version__} GPT2LMHeadModel (dropout 0), torch {torch.__version__}"}
save_file({k: v.contiguous() for k, v in t.items()}, out, metadata=meta)
print("wrote", out, "loss", loss.item())
