"""Learning-rate sweep on the study's own model family and protocol, at the grid's durations, two seeds.

Each (width, LR, seed) is one WSD run of the longest duration that keeps snapshots where the shorter
durations' cool-downs start; the shorter runs branch off them (train/loop.py), so every cell gives the
loss at each duration for about the price of one run. Per (width, duration) the optimum is the vertex of
a parabola in log LR through the best point and its neighbours (seeds averaged); the rule lr = c / d_model
(train/optim.py) takes c from the bracketed optima of the longest duration.
Usage: python benchmarks/lr_sweep.py [--out docs/lr_sweep.csv] [--workers 2]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile

import numpy as np

WIDTHS = (40, 64, 104)
LRS = (0.004, 0.008, 0.016, 0.032)
SEEDS = {0: LRS, 1: (0.008, 0.016)}
DURATIONS = (500_000, 1_000_000, 2_000_000)  # tokens; the default grid's runs train 0.6-11M


def _one(job):
    width, lr, seed = job
    from pathlib import Path

    from scalinglab.model.accounting import param_breakdown
    from scalinglab.model.family import shape_for_width
    from scalinglab.plan.spec import RunSpec
    from scalinglab.train.loop import train
    from scalinglab.train.optim import cooldown_start
    shape = shape_for_width(width, vocab_size=256, n_ctx=128)
    specs = [RunSpec(shape=shape, n_tokens=d, batch_size=16, lr=lr, seed=seed, n_eval_tokens=16384, n_evals=4,
                     schedule="wsd", min_lr_frac=0.0, beta2=0.99) for d in DURATIONS]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trunk, branches = specs[-1], specs[:-1]
        starts = [cooldown_start(s.steps, s.cooldown_frac) for s in branches]
        res = [train(trunk, Path(tmp) / "trunk", threads=1, snapshot_at=tuple(starts))]
        for spec, start in zip(branches, starts):
            res.append(train(spec, Path(tmp) / f"b{start}", threads=1,
                             init_from=Path(tmp) / "trunk" / "snapshots" / f"step-{start}.pt"))
    for r in res:
        rows.append({"width": width, "n_layer": shape.n_layer,
                     "n_params_nonembed": param_breakdown(shape)["nonembed"],
                     "n_params_total": param_breakdown(shape)["total"], "n_tokens": r.n_tokens, "lr": lr,
                     "seed": seed, "val_loss": r.val_loss, "status": r.status})
    return rows


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
    jobs = [(w, lr, seed) for seed, lrs in SEEDS.items() for lr in lrs for w in WIDTHS]
    jobs.sort(key=lambda j: -j[0])  # largest first, so the pool ends together
    with mp.get_context("spawn").Pool(args.workers) as pool:
        rows = [r for rs in pool.imap_unordered(_one, jobs) for r in rs]
    import pandas as pd
    table = pd.DataFrame(rows).sort_values(["width", "n_tokens", "lr", "seed"])
    table.to_csv(args.out, index=False)
    mean = table.groupby(["width", "n_params_nonembed", "n_tokens", "lr"], as_index=False)["val_loss"].mean()
    print(mean.pivot_table(index=["width", "n_tokens"], columns="lr", values="val_loss").round(4).to_string())
    seeds = table[table["lr"].isin(SEEDS[1])].pivot_table(index=["width", "n_tokens", "lr"], columns="seed",
                                                           values="val_loss")
    print(f"seed-to-seed |difference|: median {np.median(np.abs(seeds[0] - seeds[1])):.4f} nats, "
          f"max {np.max(np.abs(seeds[0] - seeds[1])):.4f}")
    optima = []
    for (width, n, tokens), group in mean.groupby(["width", "n_params_nonembed", "n_tokens"]):
        lr_opt, edge = vertex(group["lr"].to_numpy(), group["val_loss"].to_numpy())
        optima.append((width, tokens, lr_opt, edge))
        print(f"width {width} (N_nonembed {n:,}), {tokens / 1e6:.1f}M tokens: best LR {lr_opt:.4g}, "
              f"x d_model {lr_opt * width:.3g}" + ("  (at the edge of the grid)" if edge else ""))
    longest = [w * lr for w, t, lr, edge in optima if t == max(o[1] for o in optima) and not edge]
    if longest:  # the rule lr = c / d_model (train/optim.py), c from the longest duration's bracketed optima
        print(f"width rule at the longest duration: lr = {np.exp(np.mean(np.log(longest))):.3g} / d_model")

if __name__ == "__main__":
    main()
