"""Training throughput on CPU, measured in one run.

1. Our trainer against a plain nanoGPT-style loop written here (same shape, batch, context, threads):
   tokens/s of each and the ratio (ours / plain). Ours includes its own evals and noise-scale steps.
2. A grid of tiny runs as one single-threaded process per core, against one 2-thread process doing the
   same runs one after another: wall times and the speed-up.
Usage: python benchmarks/train_speed.py [--tokens 400000] [--grid-runs 4]
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from scalinglab.data.shards import build_shards
from scalinglab.model.accounting import ModelShape
from scalinglab.plan.spec import RunSpec
from scalinglab.train.loop import train


# ---- the plain loop: nanoGPT's model and train.py, reduced to their essentials -------------------------
class PlainAttention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class PlainBlock(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(d), PlainAttention(d, h), nn.LayerNorm(d)
        self.c_fc, self.c_proj = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class PlainGPT(nn.Module):
    def __init__(self, s: ModelShape):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(s.vocab_size, s.d_model), nn.Embedding(s.n_ctx, s.d_model)
        self.h = nn.ModuleList(PlainBlock(s.d_model, s.n_head) for _ in range(s.n_layer))
        self.ln_f = nn.LayerNorm(s.d_model)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def plain_loop(shape: ModelShape, data: np.ndarray, batch: int, steps: int) -> float:
    """nanoGPT-style: random windows via torch.randint, AdamW, clip, constant LR; returns tokens/s."""
    torch.manual_seed(0)
    model = PlainGPT(shape)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    T = shape.n_ctx
    t0 = time.perf_counter()
    for _ in range(steps):
        ix = torch.randint(len(data) - T - 1, (batch,))
        x = torch.stack([torch.from_numpy(data[i:i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch * T / (time.perf_counter() - t0)


# ---- the grid ----------------------------------------------------------------------------------------
def _grid_specs(n_runs: int, tokens: int) -> list[RunSpec]:
    """Tiny runs of the kind a debug study trains: d_model 32-64, 2-3 layers, 8 x 64-token batches."""
    shapes = [ModelShape(n_layer=2 + i % 2, d_model=32 + 16 * (i % 3), n_head=4,
                         d_head=(32 + 16 * (i % 3)) // 4, d_ff=4 * (32 + 16 * (i % 3)), vocab_size=256,
                         n_ctx=64) for i in range(n_runs)]
    return [RunSpec(shape=shapes[i], n_tokens=tokens, batch_size=8, seed=i, n_eval_tokens=4096)
            for i in range(n_runs)]


def _run_many(specs, threads, root):
    for i, spec in enumerate(specs):
        train(spec, f"{root}/{threads}-{i}-{spec.run_id}", threads=threads)


def grid(n_runs: int, tokens: int) -> tuple[float, float]:
    specs = _grid_specs(n_runs, tokens)
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        p = ctx.Process(target=_run_many, args=(specs, 2, root))
        p.start()
        p.join()
        sequential = time.perf_counter() - t0
        t0 = time.perf_counter()
        procs = [ctx.Process(target=_run_many, args=(specs[k::2], 1, root)) for k in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        parallel = time.perf_counter() - t0
    return sequential, parallel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=400_000)
    ap.add_argument("--grid-runs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    shards = build_shards()
    shape = ModelShape(n_layer=4, d_model=128, n_head=4, d_head=32, d_ff=512, vocab_size=256, n_ctx=256)
    batch = 16
    torch.set_num_threads(args.threads)
    steps = math.ceil(args.tokens / (batch * shape.n_ctx))
    plain, ours, results = [], [], []
    for _ in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
        plain.append(plain_loop(shape, np.asarray(shards.train), batch, steps))
        with tempfile.TemporaryDirectory() as out:
            res = train(RunSpec(shape=shape, n_tokens=args.tokens, batch_size=batch), out,
                        threads=args.threads, shards=shards)
        ours.append(res.tokens_per_s)
        results.append(res)
    res = results[-1]
    print(f"shape: {shape.n_layer} layers, d_model {shape.d_model}, n_ctx {shape.n_ctx}, batch {batch}, "
          f"{args.threads} thread(s), {steps} steps, {args.repeats} interleaved repeats (median)")
    print(f"plain nanoGPT-style loop: {np.median(plain):10.0f} tokens/s  (each: "
          f"{', '.join(f'{v:.0f}' for v in plain)})")
    print(f"scalinglab trainer:       {np.median(ours):10.0f} tokens/s  (each: "
          f"{', '.join(f'{v:.0f}' for v in ours)})")
    print(f"  training steps incl. noise-scale steps; its {len(res.evals)} evals took {res.eval_time_s:.1f} "
          f"of {res.wall_time_s:.1f} s wall ({res.n_tokens / res.wall_time_s:.0f} tokens/s all in)")
    print(f"ratio ours / plain: {np.median(ours) / np.median(plain):.2f}")
    if not args.grid_runs:
        return
    seq, par = grid(args.grid_runs, 150_000)
    print(f"grid of {args.grid_runs} tiny runs: one 2-thread process in turn {seq:.1f} s; "
          f"2 single-threaded processes {par:.1f} s; speed-up {seq / par:.2f}x")


if __name__ == "__main__":
    main()
