"""Does the study predict a larger run? The held-out error and the fits' health, per study design.

For each named ablation (a study config), run the study (or resume it in --root/NAME), then print one
table row: the held-out error and whether the measured loss is inside the stated interval, Approach 3
converged or not, E with its 95% interval, and the exponent a of N_opt ~ C^a from Approaches 1, 2 and 3.
``--frontier`` also trains two runs the study never saw, one core each, and compares them with the law:
the held-out budget at a model ~2.5x smaller than the fitted optimum, and 2x the largest budget at its
optimum (the law must hold near the frontier, not only at one point).
Usage: python benchmarks/prediction.py [NAME ...] [--root DIR] [--frontier]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
from pathlib import Path

from scalinglab.plan.config import StudyConfig, load_study

# Protocol and design ablations. Rows measured before this protocol existed (learned positions, GPT-2's
# 0.02 init, beta2 0.95, cosine IsoFLOP grids), and the frontier-window design of commit 190ebd4, are in
# docs/study.md; the code no longer builds them.
ABLATIONS = {
    "default": {},
    "warmup-25": dict(warmup_steps=25),  # every run warms up over 25 steps instead of the trainer's 100
    "cosine-isoflop": dict(schedule="cosine", budgets=(1e12, 2e12, 4e12), sizes_per_budget=6, size_span=8.0,
                           noise_seeds=0),
}


def config(name: str) -> StudyConfig:
    return dataclasses.replace(load_study(preset="default"), name=f"ablation-{name}", **ABLATIONS[name])


def run(name: str, root: Path) -> tuple[StudyConfig, Path, dict]:
    from scalinglab.run.local import LocalExecutor
    from scalinglab.study import run_study
    cfg, out = config(name), root / name
    summary = run_study(cfg, out, LocalExecutor(), LocalExecutor(workers=1), log=lambda m: None)
    return cfg, out, summary


def row(name: str, out: Path, summary: dict) -> dict:
    from scalinglab.fit.chinchilla.approach3 import ChinchillaFit
    from scalinglab.fit.every import fit_every
    from scalinglab.store import SQLiteStore
    store = SQLiteStore.open(out / "study.sqlite")
    finals, curves = store.fit_table(), store.curve_table()
    fit3 = ChinchillaFit(bootstrap=200, seed=0).fit(finals).result_
    fits, _ = fit_every(curves, [("chinchilla", "1"), ("chinchilla", "2")], approach3=None, bootstrap=0)
    a = {f.approach: f.params["a"] for f in fits}
    h = summary["holdout"]
    E_ci = fit3.ci.get("E", (float("nan"),) * 2)
    return {"ablation": name, "runs": summary["n_runs"], "held-out error %": round(100 * h["rel_error"], 2),
            "inside interval": h["inside_interval"], "A3 converged": fit3.converged,
            "E": round(fit3.params["E"], 3), "E 95%": f"[{E_ci[0]:.3f}, {E_ci[1]:.3f}]",
            "a (A1)": round(a.get("1", float("nan")), 3), "a (A2)": round(a.get("2", float("nan")), 3),
            "a (A3)": round(fit3.a, 3)}


def _train_one(job):
    spec_dict, out = job
    from scalinglab.plan.spec import RunSpec
    from scalinglab.train.loop import train
    return train(RunSpec.from_dict(spec_dict), out, threads=1).to_dict()


def frontier(cfg: StudyConfig, out: Path) -> list[dict]:
    """Two runs the study never saw, predicted by its fit.json, trained one per core."""
    from scalinglab.fit.chinchilla.result import FitResult
    from scalinglab.model.accounting import param_breakdown
    from scalinglab.model.family import shape_for_params
    from scalinglab.plan.grid import optimum_in_family, spec_for_budget
    fit = FitResult.load(out / "fit.json")
    c_hold, c_two = cfg.holdout_factor * max(cfg.budgets), 2 * max(cfg.budgets)
    best = optimum_in_family(fit.predict, c_hold, cfg, 256, cfg.min_steps)
    small = shape_for_params(param_breakdown(best.shape)["total"] / 2.5, vocab_size=256, n_ctx=cfg.n_ctx)
    specs = {"held-out budget, N_opt / 2.5": spec_for_budget(small, c_hold, cfg),
             "2x largest budget, N_opt": optimum_in_family(fit.predict, c_two, cfg, 256, cfg.min_steps)}
    jobs = [(s.to_dict(), str(out / "frontier" / s.run_id)) for s in specs.values()]
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(_train_one, jobs)
    rows = []
    for (what, spec), res in zip(specs.items(), results):
        N, D = param_breakdown(spec.shape)["total"], spec.n_tokens
        pred = float(fit.predict(N, D))
        rows.append({"run": what, "N": N, "D": D, "predicted": round(pred, 4),
                     "measured": round(res["val_loss"], 4),
                     "error %": round(100 * (pred / res["val_loss"] - 1), 2)})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", default=list(ABLATIONS))
    ap.add_argument("--root", default="prediction-studies")
    ap.add_argument("--frontier", action="store_true")
    args = ap.parse_args()
    import pandas as pd
    rows, root = [], Path(args.root)
    for name in args.names:
        cfg, out, summary = run(name, root)
        rows.append(row(name, out, summary))
        print(json.dumps(rows[-1]), flush=True)
        if args.frontier:
            for r in frontier(cfg, out):
                print("  frontier:", json.dumps(r), flush=True)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
