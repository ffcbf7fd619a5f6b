#!/usr/bin/env python3
"""GPT-2 training in PyTorch eager (transformers' GPT2LMHeadModel built from a GPT2Config: random init, nothing
downloaded), the comparison for `leantrain train --device cuda` in scripts/gpu-check's training section. The same
model and settings as scripts/gpu-train-check's `gpt2` mode: GPT-2 124M (12 layers, 768 wide, 12 heads, vocab
50257, tied lm head, no dropout: leantrain has none), batch 4 x 1024, learning rate 1e-4, no weight decay (both
trainers' default), random token ids, the loss of transformers' labels= path (as the Trainer computes it), three
method sets:

  a  torch.optim.AdamW (fused=True where the device supports it) on fp32 weights, gradient clipping at 1.0
     (leantrain: --optim adamw_torch)
  b  bitsandbytes AdamW8bit + gradient checkpointing (use_reentrant=False) + bf16 autocast over fp32 master weights,
     clipping at 1.0 (leantrain: --optim adamw_bnb_8bit --gradient_checkpointing --bf16); skipped, with the reason,
     when bitsandbytes cannot be imported
  c  as close to leantrain's "everything" as PyTorch eager gets: weights only in bf16 (model.to(bfloat16), no fp32
     master), gradient checkpointing, the optimizer stepped inside backward (one optimizer per parameter, stepped by
     a post-accumulate-grad hook, PyTorch's recipe; each gradient freed right after its step), no clipping. The
     optimizer (--c_optim): bnb = bitsandbytes AdamW8bit (the default: 8-bit, not leantrain's 4-bit, and rounding to
     nearest, not stochastic rounding: bitsandbytes has neither a 4-bit AdamW nor stochastic rounding); torchao =
     torchao.optim.AdamW4bit(bf16_stochastic_round=True), the same method as leantrain's adamw_torch_4bit +
     bf16_stochastic_round=True, but it runs through torch.compile (minutes of compilation on the first steps, so
     not gpu-check's default); adamw = torch.optim.AdamW on the bf16 weights. bnb falls back to adamw, saying so,
     when bitsandbytes is missing.
     (leantrain: --optim adamw_torch_4bit --gradient_checkpointing --pure_bf16
      --optim_args bf16_stochastic_round=True --optim_in_backward --max_grad_norm 0)

Each set: --steps steps (default 6), the first --warmup (default 3) untimed; tokens/s = tokens of the timed steps
over their wall time (the device synchronised before and after), the steps leantrain's last logging window covers.
Peak memory: torch.cuda.max_memory_allocated() from before the model is built to the end (weights, gradients,
optimizer state, activations; what the caching allocator handed out, not what it reserved, which is printed too),
the counterpart of leantrain's measured device peak. One line per set:

  torch-gpt2 set=a tokens_per_s=... peak_mib=... reserved_mib=... loss=... what="..."
  torch-gpt2 set=b skipped: <reason>

On the CPU (--device cpu, for a smoke test with small --n_layer/--n_embd/--seq) peak_mib and reserved_mib are
"na" (not measured). Exit status 0 when every set that ran finished with a finite loss; when torch or
transformers cannot be imported the script says so and exits 0 (nothing to compare)."""
import argparse
import gc
import math
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--n_layer", type=int, default=12)
    ap.add_argument("--n_embd", type=int, default=768)
    ap.add_argument("--n_head", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--seq", type=int, default=1024, help="tokens per sequence (and n_positions)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--sets", default="a,b,c", help="comma-separated subset of a,b,c")
    ap.add_argument("--c_optim", default="bnb", choices=["bnb", "torchao", "adamw"], help="set c's optimizer")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"],
                    help="transformers' attention implementation (default sdpa, transformers' own default)")
    a = ap.parse_args()
    if a.steps <= a.warmup:
        ap.error("--steps must be larger than --warmup (the timed steps come after the warm-up)")
    sets = [s.strip() for s in a.sets.split(",") if s.strip()]
    if not sets or any(s not in ("a", "b", "c") for s in sets):
        ap.error("--sets takes a comma-separated subset of a,b,c")
    try:
        import torch
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as e:
        print(f"# torch_gpt2_train: cannot import torch and transformers ({e}): no PyTorch comparison")
        return 0
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("# torch_gpt2_train: torch sees no CUDA device: no PyTorch comparison")
        return 0
    try:
        import bitsandbytes as bnb
        bnb_err = None
    except Exception as e:  # ImportError, or a library that fails to load
        bnb, bnb_err = None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"

    cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.seq, n_embd=a.n_embd, n_layer=a.n_layer, n_head=a.n_head,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True, use_cache=False,
                     bos_token_id=a.vocab - 1, eos_token_id=a.vocab - 1)
    name = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"# torch {torch.__version__}, transformers {transformers.__version__}, "
          f"bitsandbytes {bnb.__version__ if bnb else 'missing'}; {name}; GPT-2 {a.n_layer} layers, {a.n_embd} embd, "
          f"{a.n_head} heads, vocab {a.vocab}, batch {a.batch} x {a.seq}, attention {a.attn}; {a.steps} steps, "
          f"the last {a.steps - a.warmup} timed", flush=True)
    gen = torch.Generator(device="cpu").manual_seed(0)
    batches = [torch.randint(0, a.vocab, (a.batch, a.seq), generator=gen).to(dev) for _ in range(2)]
    fails = 0

    def fused_ok():
        try:  # fused AdamW exists for CUDA and, in recent torch, for the CPU
            p = torch.zeros(4, device=dev, requires_grad=True)
            p.grad = torch.zeros(4, device=dev)
            torch.optim.AdamW([p], fused=True).step()
            return True
        except Exception:
            return False

    for s in sets:
        what, why = None, None
        if s == "b" and bnb is None:
            why = f"bitsandbytes is not importable ({bnb_err})"
        elif s == "c" and a.c_optim == "torchao":
            try:
                import torchao.optim  # noqa: F401
            except Exception as e:
                why = f"--c_optim torchao: torchao is not importable ({type(e).__name__}: {e})"
        if why:
            print(f"torch-gpt2 set={s} skipped: {why}", flush=True)
            continue
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        torch.manual_seed(1)
        model, hooks = None, []
        try:
            with dev:
                model = GPT2LMHeadModel._from_config(cfg, attn_implementation=a.attn)
            model.to(dev).train()
            if s in ("b", "c"):
                if hasattr(model, "activation_checkpointing_enable"):  # transformers 5's name
                    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
                else:
                    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            clip = s in ("a", "b")
            autocast = s == "b"
            opt = None
            if s == "a":
                fused = fused_ok()
                opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0, fused=fused or None)
                what = f"AdamW(fused={fused}) fp32, clip 1.0"
            elif s == "b":
                opt = bnb.optim.AdamW8bit(model.parameters(), lr=a.lr, weight_decay=0.0)
                what = "bitsandbytes AdamW8bit + gradient checkpointing + bf16 autocast (fp32 master), clip 1.0"
            else:
                model.to(torch.bfloat16)
                kind = a.c_optim
                note = ""
                if kind == "bnb" and bnb is None:
                    kind, note = "adamw", f" (bitsandbytes not importable: {bnb_err})"
                if kind == "bnb":
                    make = lambda p: bnb.optim.AdamW8bit([p], lr=a.lr, weight_decay=0.0)  # noqa: E731
                    oname = "bitsandbytes AdamW8bit (round to nearest)"
                elif kind == "torchao":
                    import torchao.optim
                    make = lambda p: torchao.optim.AdamW4bit([p], lr=a.lr, weight_decay=0.0,  # noqa: E731
                                                             bf16_stochastic_round=True)
                    oname = "torchao AdamW4bit(bf16_stochastic_round=True) via torch.compile"
                else:
                    fused = fused_ok()
                    make = lambda p: torch.optim.AdamW([p], lr=a.lr, weight_decay=0.0,  # noqa: E731
                                                       fused=fused or None)
                    oname = f"torch AdamW(fused={fused}) on bf16 weights"
                per_param = {p: make(p) for p in model.parameters()}

                def hook(p, per_param=per_param):
                    per_param[p].step()
                    p.grad = None  # freed at once: only one parameter's gradient lives at a time

                hooks = [p.register_post_accumulate_grad_hook(hook) for p in model.parameters()]
                what = (f"pure bf16 weights + {oname} stepped in backward + gradient checkpointing, no clipping"
                        + note)
            loss_v = float("nan")
            t0 = None
            for step in range(a.steps):
                if step == a.warmup:
                    if cuda:
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                ids = batches[step % len(batches)]
                if opt is not None:
                    opt.zero_grad(set_to_none=True)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                    loss = model(input_ids=ids, labels=ids).loss
                loss.backward()
                if opt is not None:
                    if clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()
                loss_v = loss.item() if step == a.steps - 1 else loss_v
            if cuda:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            tps = a.batch * a.seq * (a.steps - a.warmup) / dt
            if cuda:
                peak = f"{(torch.cuda.max_memory_allocated() - base) / 2**20:.1f}"
                reserved = f"{torch.cuda.max_memory_reserved() / 2**20:.1f}"
            else:
                peak = reserved = "na"
            if not math.isfinite(loss_v):
                print(f"torch-gpt2 set={s} failed: the loss is {loss_v}", flush=True)
                fails += 1
                continue
            print(f"torch-gpt2 set={s} tokens_per_s={tps:.0f} peak_mib={peak} reserved_mib={reserved} "
                  f"loss={loss_v:.4f} what=\"{what}\"", flush=True)
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else ""
            print(f"torch-gpt2 set={s} failed: {type(e).__name__}: {msg[:300]}", flush=True)
            fails += 1
        finally:
            for h in hooks:
                h.remove()
            hooks = []
            opt = per_param = model = None  # noqa: F841
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
