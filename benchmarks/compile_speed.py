"""torch.compile against eager on this machine's CPU, measured in one run: does `--compile` pay?

1. By model width (the family's shapes, one thread, batch 16 x 128 tokens, fp32): the steady-state
   tokens/s of a training step (forward, backward, fused AdamW) eager and compiled, their ratio, and the
   time of the first compiled step (the compile itself, on this process's cold cache).
2. The trainer with `compile_model=True` on the debug model against the eager run: every eval loss (the
   compiled kernels sum in another order: equal to float precision, not bit for bit) and the wall time.

Measured 2026-11-25 (2-core AMD EPYC, torch 2.13 CPU): ratios 1.04 (d64), 1.02, 1.01, 0.99 (d384 x 8) after
a first step of 12-27 s; the debug run's losses within 2e-7. On CPU it does not pay, so it is off by default.

Usage: python benchmarks/compile_speed.py [--widths 64,128,256,384] [--steps 8]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from scalinglab.data.shards import build_shards
from scalinglab.model.family import named_shape, shape_for_width
from scalinglab.model.gpt import GPT
from scalinglab.plan.spec import RunSpec
from scalinglab.train.loop import train
from scalinglab.train.optim import param_groups

BATCH, CTX = 16, 128


def step_rate(width: int, steps: int, compiled: bool) -> tuple[float, float]:
    """(tokens/s over ``steps`` steps after two warm-up steps, seconds of the first step)."""
    torch.manual_seed(0)
    model = GPT(shape_for_width(width, vocab_size=256, n_ctx=CTX))
    net = torch.compile(model) if compiled else model
    opt = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3, fused=True)
    xy = torch.randint(0, 256, (BATCH, CTX + 1), generator=torch.Generator().manual_seed(0))

    def step():
        net(xy[:, :-1], xy[:, 1:]).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH * CTX / (time.perf_counter() - t0), first


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="64,128,256,384")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, 1 thread, batch {BATCH} x {CTX}")
    for width in map(int, args.widths.split(",")):
        eager, _ = step_rate(width, 3 * args.steps if width <= 128 else args.steps, False)
        fast, first = step_rate(width, 3 * args.steps if width <= 128 else args.steps, True)
        print(f"  d_model {width:4d}: eager {eager:8.0f} tok/s  compiled {fast:8.0f} tok/s  "
              f"ratio {fast / eager:.2f}  first compiled step {first:5.1f} s", flush=True)
    shards = build_shards("embedded", "bytes")
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=30_000, batch_size=8, n_eval_tokens=2048)
    runs = {}
    for compiled in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            runs[compiled] = (train(spec, tmp, threads=1, shards=shards, compile_model=compiled),
                              time.perf_counter() - t0)
    (plain, t_plain), (comp, t_comp) = runs[False], runs[True]
    worst = max(abs(b["val_loss"] - a["val_loss"]) / a["val_loss"] for a, b in zip(plain.evals, comp.evals))
    print(f"  debug run ({spec.steps} steps): eager {t_plain:.1f} s, compiled {t_comp:.1f} s; "
          f"largest relative difference of an eval loss {worst:.1e}")


if __name__ == "__main__":
    main()
