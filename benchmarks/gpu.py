"""What only a GPU shows, measured in one run (docs/gpu.md has the numbers of the last run).

1. throughput: the `gpu-small` preset's smallest, middle and largest shapes (context 512, batch 64) alone
   on the GPU for a fixed number of steps: steady tokens/s (from the progress callback, after the first
   steps), MFU against the GPU's measured bf16 / fp32 matmul peak, bf16 autocast against fp32, and
   torch.compile against eager (compile time reported apart).
2. packing: the preset's first budget's runs, shortened to a fixed number of steps, through the local
   executor one run at a time (runs_per_gpu 1), 4 at a time, and at the default K (GPU memory over the
   largest run's need, at most 8): wall time, aggregate tokens/s and the speed-up (`--packing-k`; on a
   CPU, `--device cpu`, K is the worker count: the dry run of benchmarks/gpu_check.py).
Each part writes its rows to --out as JSON as soon as it has them, so a cut-off run keeps what it measured.
Usage: python benchmarks/gpu.py [--parts throughput,packing] [--preset gpu-small] [--sizes 0,1,2] [--steps 80]
       [--packing-k 1,4,default] [--out gpu.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import torch

from scalinglab import jsonsafe
from scalinglab.data.shards import build_shards
from scalinglab.model.accounting import memory_needed
from scalinglab.plan.config import load_study
from scalinglab.plan.grid import isoflop_grid
from scalinglab.run.executor import Job
from scalinglab.run.local import LocalExecutor, runs_per_gpu
from scalinglab.train.loop import train
from scalinglab.train.mfu import peak_flops

EVAL_TOKENS = 32768  # the preset's 262,144 would time the evals; tokens/s excludes them anyway


def steady_rate(points: list[dict], skip: int) -> float:
    """Training tokens/s between the progress point at step ``skip`` and the last (the first steps hold
    CUDA's and the allocator's warm-up, and a compiled model's compile)."""
    trained = lambda p: p["step"] * p["tokens"] / p["tokens_per_s"]  # seconds of training by then
    first = next(p for p in points if p["step"] >= min(skip, points[-1]["step"] // 3))
    return (points[-1]["step"] - first["step"]) * first["tokens"] / (trained(points[-1]) - trained(first))


def timed_run(spec, root, shards, device, compile_model=False, skip=20) -> dict:
    points = []
    tok_per_step = spec.batch_size * spec.shape.n_ctx

    def progress(p):
        points.append({"step": p["step"], "tokens_per_s": p["tokens_per_s"], "tokens": tok_per_step})

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    res = train(spec, os.path.join(root, spec.run_id + ("-c" if compile_model else "")), device=device,
                shards=shards, progress=progress, compile_model=compile_model)
    wall = time.perf_counter() - t0
    rate = steady_rate(points, skip)
    flops_per_tok = res.flops / res.n_tokens
    peak = peak_flops(device, spec.precision)
    return {"d_model": spec.shape.d_model, "n_layer": spec.shape.n_layer, "params": res.n_params_total,
            "precision": spec.precision, "compiled": compile_model, "steps": res.steps,
            "tokens_per_s": round(rate), "tflops": round(rate * flops_per_tok / 1e12, 2),
            "mfu": round(rate * flops_per_tok / peak, 4), "peak_tflops": round(peak / 1e12, 1),
            "mean_tokens_per_s_incl_warmup": round(res.tokens_per_s), "wall_s": round(wall, 1),
            "val_loss": round(res.val_loss, 4), "status": res.status,
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
            "estimated_gib": round(memory_needed(spec.shape, spec.batch_size, spec.precision) / 2**30, 2)}


def throughput(specs, steps, shards, root, emit, device, which) -> None:
    by_size = sorted({s.shape.d_model: s for s in specs}.values(), key=lambda s: s.shape.d_model)
    picks = [by_size[0], by_size[len(by_size) // 2], by_size[-1]]
    tok_per_step = picks[0].batch_size * picks[0].shape.n_ctx
    for i, spec in enumerate(picks):
        if i not in which:
            continue
        spec = dataclasses.replace(spec, n_tokens=steps * tok_per_step, n_eval_tokens=EVAL_TOKENS, n_evals=2)
        for precision in ("bf16", "fp32"):
            n = steps if precision == "bf16" or i < 2 else steps // 2  # the largest in fp32: ~1 s a step
            emit("throughput", timed_run(dataclasses.replace(spec, precision=precision,
                                                             n_tokens=n * tok_per_step), root, shards,
                                         device, skip=min(20, n // 3)))
        if i != 1:
            emit("throughput", timed_run(spec, root, shards, device, compile_model=True,
                                                skip=steps // 3))


def packing(specs, steps, root, emit, device="cuda", ks=(1, 4, None)) -> None:
    """The first budget's runs, ``steps`` steps each, through the local executor at each K of ``ks`` runs
    at once (None: the default, from free GPU memory; on a CPU the dry run's K is the worker count)."""
    budget = min(b for b, _ in specs)
    runs = [s for b, s in specs if b == budget]
    tok_per_step = runs[0].batch_size * runs[0].shape.n_ctx
    runs = [dataclasses.replace(s, n_tokens=steps * tok_per_step, n_eval_tokens=EVAL_TOKENS, n_evals=2)
            for s in runs]
    jobs = lambda tag: [Job(s, os.path.join(root, tag, s.run_id)) for s in runs]
    on_gpu = device == "cuda"
    default_k = (runs_per_gpu(jobs("k"), torch.cuda.mem_get_info(0)[0]) if on_gpu
                 else min(os.cpu_count() or 1, len(runs)))
    base = None
    for k in dict.fromkeys(default_k if k is None else k for k in ks):
        results = []
        executor = (LocalExecutor(device="cuda", runs_per_gpu=k) if on_gpu
                    else LocalExecutor(device="cpu", workers=k, cores=k))
        t0 = time.perf_counter()
        assert executor.run(jobs(f"k{k}"), results.append)
        wall = time.perf_counter() - t0
        tokens = sum(r.n_tokens for r in results)
        base = base or wall
        emit("packing", {"runs_at_once": k, "default": k == default_k, "runs": len(runs), "steps": steps,
                         "wall_s": round(wall, 1), "tokens_per_s": round(tokens / wall),
                         "speedup_vs_1": round(base / wall, 2),
                         "done": sum(r.status == "done" for r in results),
                         "per_run": [{"params": r.n_params_total, "tokens_per_s": round(r.tokens_per_s),
                                      "mfu": r.mfu}
                                     for r in sorted(results, key=lambda r: r.n_params_total)]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="throughput,packing")
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--out", default="gpu.json")
    ap.add_argument("--sizes", default="0,1,2", help="of the smallest, middle and largest shapes")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of this script")
    ap.add_argument("--preset", default="gpu-small", help="whose grid's shapes and first budget are timed")
    ap.add_argument("--packing-k", default="1,4,default", help="runs at once to time (default: from memory)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device: this benchmark measures a GPU")
    cfg = load_study(preset=args.preset)
    shards = build_shards(cfg.data, cfg.tokenizer)
    specs = list(isoflop_grid(cfg, shards.vocab_size))
    report = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
              "torch": torch.__version__}

    def emit(part, row):
        report.setdefault(part, []).append(row)
        print(part, jsonsafe.dumps(row), flush=True)
        with open(args.out, "w") as fh:
            fh.write(jsonsafe.dumps(report, indent=1))  # strict: a NaN MFU (no peak) -> null

    with tempfile.TemporaryDirectory() as root:
        if "throughput" in args.parts:
            throughput([s for _, s in specs], args.steps, shards, root, emit, args.device,
                       {int(i) for i in args.sizes.split(',')})
        if "packing" in args.parts:
            ks = [None if k == "default" else int(k) for k in args.packing_k.split(",")]
            packing(specs, args.steps, root, emit, args.device, ks)


if __name__ == "__main__":
    main()
