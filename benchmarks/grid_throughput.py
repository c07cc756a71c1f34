"""Grid throughput of the local executor on the `default` study's grid, measured in one run.

The same runs twice through `LocalExecutor`: one single-threaded worker per core (the default), and one
worker with every core's threads doing them one after another. Prints both wall times, tokens/s and the
speed-up (issue 5's bar: >= 1.8x on 2 cores). ``--fraction`` scales every run's tokens (shapes, batch and
context unchanged) so the comparison fits in minutes; 1.0 is the whole grid.
Usage: python benchmarks/grid_throughput.py [--preset default] [--fraction 0.15] [--reference]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

from scalinglab.data.shards import build_shards
from scalinglab.plan.config import load_study
from scalinglab.plan.grid import isoflop_grid
from scalinglab.run.executor import Job
from scalinglab.run.local import LocalExecutor


def scaled_grid(preset: str, fraction: float) -> list:
    cfg = load_study(preset=preset)
    shards = build_shards(cfg.data, cfg.tokenizer)
    specs = []
    for _, spec in isoflop_grid(cfg, shards.vocab_size):
        step_tokens = spec.batch_size * spec.shape.n_ctx
        specs.append(dataclasses.replace(spec, n_tokens=max(2, round(spec.steps * fraction)) * step_tokens))
    return specs


def timed(executor: LocalExecutor, specs: list, root: str) -> tuple[float, int]:
    results = []
    jobs = [Job(s, os.path.join(root, s.run_id)) for s in specs]
    t0 = time.perf_counter()
    assert executor.run(jobs, results.append)
    wall = time.perf_counter() - t0
    failed = [r for r in results if r.get("status") != "done"]
    assert not failed, failed
    return wall, sum(r["n_tokens"] for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--fraction", type=float, default=0.15)
    ap.add_argument("--reference", action="store_true",
                    help="also one 1-thread worker alone: splits the ratio into packing and thread scaling")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    specs = scaled_grid(args.preset, args.fraction)
    print(f"{args.preset} grid: {len(specs)} runs at {args.fraction:g} of their tokens, "
          f"{sum(s.n_tokens for s in specs):,} tokens in all; {cores} cores")
    rows = {}
    modes = [("per-core", LocalExecutor(workers=cores, cores=cores)),
             ("sequential", LocalExecutor(workers=1, cores=cores))]
    if args.reference:
        modes.append(("one-thread", LocalExecutor(workers=1, cores=1)))
    for name, executor in modes:
        with tempfile.TemporaryDirectory() as root:
            wall, tokens = timed(executor, specs, root)
        rows[name] = wall
        print(f"  {name:<11} {executor.workers} worker(s) x {executor.threads} thread(s): {wall:7.1f} s, "
              f"{tokens / wall / 1e3:6.1f}k tokens/s")
    print(f"speed-up per-core / sequential: {rows['sequential'] / rows['per-core']:.2f}x (bar >= 1.8x)")
    if args.reference:
        print(f"  packing: per-core / one-thread {rows['one-thread'] / rows['per-core']:.2f}x (ideal "
              f"{cores}x); "
              f"thread scaling: sequential / one-thread {rows['one-thread'] / rows['sequential']:.2f}x "
              f"(the ratio above is bounded by {cores} / this)")


if __name__ == "__main__":
    main()
