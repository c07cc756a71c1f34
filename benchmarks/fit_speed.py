"""Approach 3, full 4500-start protocol: ours against scipy L-BFGS-B started from every grid point.

Both minimise the same summed Huber objective on the same ~250 simulated runs, with the same analytic
gradient. Prints both times, both objectives and the ratio; then the time of a 4000-resample bootstrap.
Usage: python benchmarks/fit_speed.py [--runs 250] [--noise 0.02] [--seed 1] [--skip-baseline]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize

from scalinglab.fit.chinchilla.approach3 import ChinchillaFit
from scalinglab.fit.chinchilla.objectives import FreeMask, RobustLoss, objective_and_grad_single
from scalinglab.fit.chinchilla.solver import default_grid
from scalinglab.published import CHINCHILLA
from scalinglab.simulate import isoflop_runs


def baseline(runs) -> tuple[float, float, np.ndarray]:
    """scipy L-BFGS-B (default tolerances, analytic gradient) from each of the 4500 starts; keep the best."""
    data = (np.log(runs.N.to_numpy()), np.log(runs.D.to_numpy()), np.log(runs.loss.to_numpy()),
            np.ones(len(runs)), RobustLoss(), FreeMask(np.ones(5, bool), np.zeros(5)))
    t0 = time.perf_counter()
    best = None
    for start in default_grid():
        res = minimize(objective_and_grad_single, start, jac=True, method="L-BFGS-B", args=data)
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    return time.perf_counter() - t0, float(best.fun), best.x


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=250)
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    per_budget = 25
    runs = isoflop_runs(CHINCHILLA, budgets=np.geomspace(6e18, 3e21, max(1, args.runs // per_budget)),
                        sizes_per_budget=per_budget, noise=args.noise, seed=args.seed)
    print(f"data: {len(runs)} runs simulated from the Chinchilla law, {args.noise:.0%} noise, seed "
          f"{args.seed}")

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        res = ChinchillaFit().fit(runs).result_
        times.append(time.perf_counter() - t0)
    ours = float(np.median(times))
    print(f"ours:     {ours:8.3f} s (median of 5; min {min(times):.3f})  objective {res.objective:.15g}  "
          f"converged={res.converged}  params " + ", ".join(f"{k}={v:.6g}" for k, v in res.params.items()))
    if not args.skip_baseline:
        t_base, f_base, _ = baseline(runs)
        print(f"baseline: {t_base:8.3f} s (scipy L-BFGS-B from all 4500 starts)  objective {f_base:.15g}")
        print(f"speed ratio baseline/ours: {t_base / ours:.1f}x   "
              f"objective ours - baseline: {res.objective - f_base:+.3e} "
              f"({'ours lower or equal' if res.objective <= f_base else 'OURS HIGHER'})")

    t0 = time.perf_counter()
    boot = ChinchillaFit(bootstrap=4000, seed=0).fit(runs).result_
    t_boot = time.perf_counter() - t0
    print(f"bootstrap: 4000 resamples, fit included: {t_boot:.2f} s; "
          f"{boot.boot_converged}/4000 resamples converged")
    for k in ("E", "A", "B", "alpha", "beta", "a"):
        lo, hi = boot.ci[k]
        truth = CHINCHILLA.get(k, CHINCHILLA["beta"] / (CHINCHILLA["alpha"] + CHINCHILLA["beta"]))
        print(f"  {k:<6} 95% CI [{lo:.4g}, {hi:.4g}]  true {truth:.4g}  "
              f"{'covered' if lo <= truth <= hi else 'MISSED'}")


if __name__ == "__main__":
    main()
