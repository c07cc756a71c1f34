"""One run on every core: threads or processes? Idle, and with a CPU-heavy job beside it.

The held-out run of a study is one run that gets the whole machine. It can take the cores as torch threads
(`--threads K`) or as K data-parallel processes of one thread each (`--nproc K`, gloo DDP; the same losses to
float precision: tests/integration/test_ddp.py). On a busy machine a multi-threaded torch process collapses
(its threads wait for one another at every op). This trains the default study's held-out shape (N ~287k,
n_ctx 128, batch 16) and the debug one for a fixed number of steps as 1 process x 1 thread, 1 x K threads,
and K processes x 1 thread, first alone, then beside a neighbour: one single-threaded matmul loop (another
user's job), and prints the trainer's tokens/s for each (training steps only, evals excluded).

Usage: python benchmarks/threads_vs_processes.py [--steps 40] [--sizes default,debug]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SHAPES = {"default": ["--params", "287248", "--n-ctx", "128", "--batch-size", "16"],
          "debug": ["--params", "49040", "--n-ctx", "64", "--batch-size", "8"]}
NEIGHBOUR = ("import torch, time\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\n"
             "while True:\n    a = (a @ a).tanh_()\n")


def configs(cores: int) -> list[tuple[str, list[str]]]:
    return [("1 process x 1 thread", ["--threads", "1"]),
            (f"1 process x {cores} threads", ["--threads", str(cores)]),
            (f"{cores} processes x 1 thread (DDP)", ["--nproc", str(cores)])]


def one(shape: list[str], extra: list[str], steps: int) -> dict:
    batch, ctx = int(shape[shape.index("--batch-size") + 1]), int(shape[shape.index("--n-ctx") + 1])
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "scalinglab", "train", *shape, "--tokens", str(steps * batch * ctx),
               "--eval-tokens", str(4 * ctx), "--precision", "fp32", "--out", tmp, "--json", *extra]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    res = json.loads(r.stdout)
    return {"tokens_per_s": res["tokens_per_s"], "val_loss": res["val_loss"], "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--sizes", default="default,debug")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for load in ("idle", "busy"):
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) if load == "busy" else None
        try:
            time.sleep(1.0 if neighbour else 0.0)
            for size in args.sizes.split(","):
                for label, extra in configs(cores):
                    row = {"size": size, "load": load, "config": label} | one(SHAPES[size], extra, args.steps)
                    rows.append(row)
                    print(f"  {size:<8}{load:<6}{label:<34}"
                          + (f"{row['tokens_per_s']:>9.0f} tok/s  val {row['val_loss']:.4f}  wall "
                             f"{row['wall_s']:.1f} s" if "error" not in row else row["error"]), flush=True)
        finally:
            if neighbour:
                neighbour.kill()
                neighbour.wait()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
