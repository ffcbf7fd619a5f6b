#!/usr/bin/env python3
"""torch.optim.AdamW(fused=True) on the tensors `leantrain bench optim --device cuda` steps: GPT-2-small blocks
(the same twelve shapes, f32) up to --params millions, weight_decay 0.01, random gradients; each step timed with
CUDA events (the median of --steps steps queued back to back), and a device-to-device copy of the parameters
timed the same way for the bandwidth ratio. Prints a table in bench optim's columns:

    optim  ms_per_step  gb_per_s  bw_ratio  state_bytes_per_param  copy_gb_per_s

(bytes per step as leantrain counts them: 12 per parameter + 2 x 8 state bytes = 28)."""
import argparse
import math
import sys

BLOCK = [(768, 0), (768, 0), (768, 2304), (2304, 0), (768, 768), (768, 0), (768, 0), (768, 0),
         (768, 3072), (3072, 0), (3072, 768), (768, 0)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=float, default=256, help="millions of parameters (default 256)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--foreach", action="store_true", help="also time foreach=True (the multi-tensor path)")
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("# torch is not installed: no comparison", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("# torch sees no CUDA device", file=sys.stderr)
        return 2
    per_block = sum(r * (c or 1) for r, c in BLOCK)
    nblocks = math.ceil(a.params * 1e6 / per_block)
    total = per_block * nblocks
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    params = []
    for _ in range(nblocks):
        for r, c in BLOCK:
            shape = (r, c) if c else (r,)
            p = torch.empty(shape, device=dev).uniform_(-0.01, 0.01, generator=gen).requires_grad_()
            p.grad = torch.empty(shape, device=dev).uniform_(-1e-3, 1e-3, generator=gen)
            params.append(p)
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name()}: {total} parameters "
          f"({nblocks} GPT-2-small blocks, {len(params)} tensors), {a.steps} timed steps")
    print(f"{'optim':<20} {'ms_per_step':>12} {'gb_per_s':>10} {'bw_ratio':>10} {'state_bytes_per_param':>22} "
          f"{'copy_gb_per_s':>14}")

    def copy_bw():
        flat = torch.empty(total, device=dev)
        src = torch.empty(total, device=dev).uniform_(generator=gen)
        best = 1e30
        for _ in range(11):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            flat.copy_(src)
            e.record()
            e.synchronize()
            best = min(best, s.elapsed_time(e))
        del flat, src
        return 2.0 * total * 4 / best / 1e6  # GB/s, bytes read + written

    variants = [("torch_adamw_fused", dict(fused=True))]
    if a.foreach:
        variants.append(("torch_adamw_foreach", dict(foreach=True)))
    for name, kw in variants:
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, **kw)
        for _ in range(3):
            opt.step()
        torch.cuda.synchronize()
        bw = copy_bw()
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(a.steps)]
        for s, e in ev:
            s.record()
            opt.step()
            e.record()
        torch.cuda.synchronize()
        times = sorted(s.elapsed_time(e) for s, e in ev)
        ms = times[len(times) // 2]
        gbs = 28.0 * total / ms / 1e6
        print(f"{name:<20} {ms:12.3f} {gbs:10.1f} {gbs / bw:10.3f} {8.0:22.4f} {bw:14.1f}", flush=True)
        del opt
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
