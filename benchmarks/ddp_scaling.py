"""One run over several CPU processes, and bf16 against fp32 by width, measured in one run.

1. bf16 autocast vs fp32 by model width (the family's shapes, one thread, batch 16 x 128 tokens): the
   trainer's tokens/s in each precision and the ratio; `--precision auto` uses bf16 from the width where
   the ratio passes 1 (train/precision.py: BF16_MIN_WIDTH_CPU).
2. A model large enough to pay for data parallelism (d_model 384 x 8 blocks) trained by `scalinglab train`
   as 1 process x 1 thread, 1 process x 2 threads, and 2 processes x 1 thread (`--nproc 2`: gloo DDP):
   tokens/s of each (the trainer's own count: training steps only, evals excluded) and wall times.

Usage: python benchmarks/ddp_scaling.py [--widths 64,128,192,256,384] [--steps 12] [--ddp-steps 16]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from scalinglab.data.shards import build_shards
from scalinglab.model.family import shape_for_width
from scalinglab.plan.spec import RunSpec
from scalinglab.train.loop import train
from scalinglab.train.precision import cpu_has_bf16

BATCH, CTX = 16, 128


def precision_table(widths: list[int], steps: int) -> list[dict]:
    shards = build_shards("embedded", "bytes")
    rows = []
    for width in widths:
        shape = shape_for_width(width, vocab_size=shards.vocab_size, n_ctx=CTX)
        speed = {}
        for precision in ("fp32", "bf16"):
            spec = RunSpec(shape=shape, n_tokens=steps * BATCH * CTX, batch_size=BATCH, n_eval_tokens=CTX,
                           n_evals=1, noise_every=0, precision=precision)
            with tempfile.TemporaryDirectory() as tmp:
                speed[precision] = train(spec, tmp, threads=1, shards=shards).tokens_per_s
        rows.append({"d_model": width, "n_layer": shape.n_layer, "fp32_tok_s": speed["fp32"],
                     "bf16_tok_s": speed["bf16"], "bf16_over_fp32": speed["bf16"] / speed["fp32"]})
        print(f"  d_model {width:4d} x {shape.n_layer:2d}: fp32 {speed['fp32']:8.0f} tok/s  "
              f"bf16 {speed['bf16']:8.0f} tok/s  ratio {speed['bf16'] / speed['fp32']:.2f}", flush=True)
    return rows


def ddp_rows(steps: int) -> list[dict]:
    tokens = steps * BATCH * CTX
    base = ["train", "--size", "l", "--n-ctx", str(CTX), "--batch-size", str(BATCH), "--tokens", str(tokens),
            "--eval-tokens", str(CTX), "--precision", "fp32", "--json"]
    rows = []
    for label, extra in (("1 process x 1 thread", ["--threads", "1"]),
                         ("1 process x 2 threads", ["--threads", "2"]),
                         ("2 processes x 1 thread (DDP, gloo)", ["--nproc", "2"])):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "scalinglab", *base, "--out", tmp, *extra],
                               capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if r.returncode:
                raise SystemExit(r.stderr)
            res = json.loads(r.stdout)
        rows.append({"setup": label, "tok_s": res["tokens_per_s"], "wall_s": wall,
                     "val_loss": res["val_loss"]})
        print(f"  {label:<36} {res['tokens_per_s']:8.0f} tok/s  wall {wall:6.1f} s  "
              f"final loss {res['val_loss']:.6f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="64,128,192,256,384")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--ddp-steps", type=int, default=16)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, CPU BF16 instructions: {cpu_has_bf16()}")
    print(f"1. bf16 autocast vs fp32, one thread, batch {BATCH} x {CTX} tokens, {args.steps} steps each")
    table = precision_table([int(w) for w in args.widths.split(",")], args.steps)
    print(f"2. d_model 384 x 8 blocks (the family's `l`), {args.ddp_steps} steps of {BATCH} x {CTX} tokens")
    ddp = ddp_rows(args.ddp_steps)
    gain = ddp[2]["tok_s"] / ddp[0]["tok_s"]
    print(f"   2 processes / 1 process: {gain:.2f}x tokens/s; vs 1 process x 2 threads: "
          f"{ddp[2]['tok_s'] / ddp[1]['tok_s']:.2f}x")
    print(json.dumps({"precision": table, "ddp": ddp}))


if __name__ == "__main__":
    main()
