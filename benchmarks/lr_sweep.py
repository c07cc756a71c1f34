"""Learning-rate sweep on the embedded corpus: the best peak LR per model size, and the fitted rule.

Sizes of the CPU study family (d_model = 32 x depth, heads of 32, bytes, n_ctx 128, batch 16); five LRs a
factor 2 apart per size; one single-threaded worker per core. For each size the optimum is the vertex of a
parabola in log LR through the best three points; the rule lr = c (N/1e6)^k is fitted to the optima.
Usage: python benchmarks/lr_sweep.py [--out docs/lr_sweep.csv] [--workers 2]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile

import numpy as np

SIZES = [  # (depth, tokens, LRs)
    (1, 500_000, (2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2)),
    (2, 1_000_000, (2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2)),
    (3, 1_500_000, (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2)),
    (4, 1_500_000, (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2)),
]


def _one(job):
    depth, tokens, lr = job
    from scalinglab.model.accounting import param_breakdown
    from scalinglab.model.family import shape_for_depth
    from scalinglab.plan.spec import RunSpec
    from scalinglab.train.loop import train
    shape = shape_for_depth(depth, vocab_size=256, n_ctx=128, aspect=32, head_dim=32)
    spec = RunSpec(shape=shape, n_tokens=tokens, batch_size=16, lr=lr, n_eval_tokens=32768, n_evals=4)
    with tempfile.TemporaryDirectory() as out:
        res = train(spec, out, threads=1)
    return {"depth": depth, "d_model": shape.d_model, "n_params_nonembed": param_breakdown(shape)["nonembed"],
            "n_tokens": res.n_tokens, "lr": lr, "val_loss": res.val_loss, "status": res.status}


def vertex(lrs, losses) -> tuple[float, bool]:
    """LR at the vertex of a parabola in log LR through the best point and its neighbours, kept inside
    that bracket; (lr, True) when the best LR is at the edge of the grid (the optimum is not bracketed)."""
    best = int(np.argmin(losses))
    if best in (0, len(lrs) - 1):
        return float(lrs[best]), True
    x, y = np.log(lrs[best - 1:best + 2]), np.asarray(losses[best - 1:best + 2])
    a, b, _ = np.polyfit(x, y, 2)
    return float(np.exp(np.clip(-b / (2 * a), x[0], x[-1]))), False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/lr_sweep.csv")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    jobs = [(d, t, lr) for d, t, lrs in SIZES for lr in lrs]
    jobs.sort(key=lambda j: -j[0] * j[1])  # largest first, so the pool ends together
    with mp.get_context("spawn").Pool(args.workers) as pool:
        rows = pool.map(_one, jobs, chunksize=1)
    rows.sort(key=lambda r: (r["depth"], r["lr"]))
    import pandas as pd
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    optima = []
    for depth, group in table.groupby("depth"):
        lr_opt, edge = vertex(group["lr"].to_numpy(), group["val_loss"].to_numpy())
        optima.append((group["n_params_nonembed"].iloc[0], lr_opt))
        print(f"depth {depth}: N_nonembed {group['n_params_nonembed'].iloc[0]:,}  best LR {lr_opt:.4g}"
              + ("  (at the edge of the grid)" if edge else ""))
    n, lr = np.array(optima).T
    k, log_c = np.polyfit(np.log(n / 1e6), np.log(lr), 1)
    print(f"fitted rule: lr = {np.exp(log_c):.3g} * (N_nonembed / 1e6) ^ {k:.3f}")


if __name__ == "__main__":
    main()
