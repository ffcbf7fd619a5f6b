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
     clipping at 1.0 (leantrain: --optim adamw_bnb_8bit --gradient_checkpointing --bf16). When bitsandbytes cannot
     be imported (the GPU machines' python3 lacks it), torch's fused AdamW stands in, the line says so
     (stand_in=adamw_fused basis=derived), and its peak_mib is derived, not run: see "Set b without bitsandbytes"
     below (--no_stand_in skips set b instead)
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
"na" (not measured).

Set b without bitsandbytes: everything but the optimizer's state is the same allocations at the same moments
whichever AdamW runs (neither optimizer's step allocates scratch: torch's fused kernel works in place, bitsandbytes'
8-bit kernel too), and both allocate their state at the first step. So the script reads the peak before the first
optimizer step (P1: no state yet) and, after resetting the counter, the peak of the rest (P2: AdamW's state held
throughout), and takes bitsandbytes' peak as max(P1, P2 - AdamW's state bytes + AdamW8bit's state bytes).
AdamW's state bytes are counted off the optimizer (every tensor of opt.state, in the allocator's 512-byte blocks);
AdamW8bit's follow bitsandbytes 0.50's Optimizer2State.init_state: a tensor of fewer than 4096 elements keeps two
fp32 states, a larger one two uint8 states and two fp32 absmax vectors of one value per 256 elements, plus the
two 256-value quantization maps once. The line also gives the measured peak (measured_peak_mib) and both state
sizes. Its tokens/s are AdamW's: bitsandbytes 0.50 steps each tensor with a launch of its own and synchronizes
the device after each one (utils.sync_gpu, 148 times a step here), where the fused AdamW steps all tensors in a few
launches, so leantrain's ratio against the stand-in errs, if at all, against leantrain.

Exit status 0 when every set that ran finished with a finite loss; when torch or transformers cannot be imported
the script says so and exits 0 (nothing to compare)."""
import argparse
import gc
import math
import sys
import time


def alloc_bytes(nbytes):
    """What the CUDA caching allocator counts for a tensor of nbytes: whole 512-byte blocks (none for 0)."""
    return -(-nbytes // 512) * 512


def optimizer_state_bytes(opt, device):
    """Bytes a torch optimizer's state holds on the device's kind (device.type: "cuda" matches the tensors' "cuda:0",
    which a comparison of devices would not): every tensor of opt.state there, each storage once."""
    seen, total = set(), 0
    for st in opt.state.values():
        for v in st.values():
            if hasattr(v, "untyped_storage") and v.device.type == device.type:
                s = v.untyped_storage()
                if s.data_ptr() not in seen:
                    seen.add(s.data_ptr())
                    total += alloc_bytes(s.nbytes())
    return total


def bnb_adamw8bit_state_bytes(params, min_8bit_size=4096, blocksize=256, qmap_values=256):
    """Device bytes bitsandbytes' AdamW8bit (0.50, Optimizer2State.init_state with its defaults) allocates for
    these parameters: a tensor under min_8bit_size elements keeps two fp32 states; a larger one two uint8 states
    and two fp32 absmax vectors, one value per blocksize elements; the two quantization maps (256 fp32 values
    each) are allocated once, with the first 8-bit tensor."""
    total, any8 = 0, False
    for p in params:
        n = p.numel()
        if n < min_8bit_size:
            total += 2 * alloc_bytes(4 * n)
        else:
            any8 = True
            total += 2 * alloc_bytes(n) + 2 * alloc_bytes(4 * (-(-n // blocksize)))
    return total + (2 * alloc_bytes(4 * qmap_values) if any8 else 0)


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
    ap.add_argument("--no_stand_in", action="store_true",
                    help="skip set b when bitsandbytes is missing (default: torch's fused AdamW stands in, its peak "
                         "derived for bitsandbytes' state)")
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
        stand_in = s == "b" and bnb is None
        if stand_in and a.no_stand_in:
            why = f"bitsandbytes is not importable ({bnb_err}); --no_stand_in"
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
            elif s == "b" and stand_in:
                fused = fused_ok()
                opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0, fused=fused or None)
                reason = bnb_err.replace('"', "'")  # the line's what="..." must stay one quoted value
                what = (f"bitsandbytes not importable ({reason}): torch AdamW(fused={fused}) stood in for "
                        "AdamW8bit + gradient checkpointing + bf16 autocast (fp32 master), clip 1.0; peak_mib "
                        "derived for AdamW8bit's state (measured_peak_mib is AdamW's), tokens/s AdamW's")
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
            pre_state_peak = None
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
                    first = stand_in and cuda and step == 0
                    if first:  # P1: the peak with no optimizer state yet
                        torch.cuda.synchronize()
                        pre_state_peak = torch.cuda.max_memory_allocated()
                    opt.step()
                    if first:  # from here on AdamW's state is held throughout: P2 is the peak of the rest
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                loss_v = loss.item() if step == a.steps - 1 else loss_v
            if cuda:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            tps = a.batch * a.seq * (a.steps - a.warmup) / dt
            extra = ""
            if cuda:
                peak = f"{(torch.cuda.max_memory_allocated() - base) / 2**20:.1f}"
                reserved = f"{torch.cuda.max_memory_reserved() / 2**20:.1f}"
            else:
                peak = reserved = "na"
            if stand_in:
                ours = optimizer_state_bytes(opt, dev)
                theirs = bnb_adamw8bit_state_bytes(model.parameters())
                measured = "na"
                if cuda:
                    post = torch.cuda.max_memory_allocated()
                    measured = f"{(max(pre_state_peak, post) - base) / 2**20:.1f}"
                    peak = f"{(max(pre_state_peak, post - (ours - theirs)) - base) / 2**20:.1f}"
                extra = (f" stand_in=adamw_fused basis=derived measured_peak_mib={measured} "
                         f"adamw_state_mib={ours / 2**20:.1f} bnb_state_mib={theirs / 2**20:.1f}")
            if not math.isfinite(loss_v):
                print(f"torch-gpt2 set={s} failed: the loss is {loss_v}", flush=True)
                fails += 1
                continue
            print(f"torch-gpt2 set={s} tokens_per_s={tps:.0f} peak_mib={peak} reserved_mib={reserved} "
                  f"loss={loss_v:.4f}{extra} what=\"{what}\"", flush=True)
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
