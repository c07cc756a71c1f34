"""Does the fast protocol find the optimum that scipy-from-every-start finds, across unlike data sets?

Each scenario: simulated runs (IsoFLOP grids, random designs, few runs, outliers, heavy noise); ours vs scipy
L-BFGS-B from all 4500 starts. Prints both objectives and their difference per scenario (~20 s each).
Usage: python benchmarks/fit_robustness.py [--quick]
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from scalinglab.fit.chinchilla.approach3 import ChinchillaFit
from scalinglab.simulate import isoflop_runs

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from fit_speed import baseline  # noqa: E402


def random_design(truth, n, noise, seed):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(4e7), np.log(1.6e10), n))
    D = np.exp(rng.uniform(np.log(5e9), np.log(5e11), n))
    L = (truth["E"] + truth["A"] / N ** truth["alpha"] + truth["B"] / D ** truth["beta"])
    return pd.DataFrame({"N": N, "D": D, "loss": L * np.exp(rng.normal(0, noise, n))})


def scenarios():
    chin = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    epoch = {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
    yield "isoflop epoch 1%", isoflop_runs(epoch, sizes_per_budget=30, noise=0.01, seed=2)
    yield "isoflop chinchilla 5%", isoflop_runs(chin, sizes_per_budget=30, noise=0.05, seed=3)
    yield "random design 245 runs 2%", random_design(epoch, 245, 0.02, 4)
    yield "few runs (12)", isoflop_runs(chin, budgets=[1e19, 1e20, 1e21], sizes_per_budget=4, noise=0.01,
                                        seed=5)
    out = isoflop_runs(epoch, sizes_per_budget=30, noise=0.01, seed=6)
    out.loc[::17, "loss"] *= 1.3  # outliers: diverged or mistuned runs
    yield "outliers every 17th run", out
    yield "E-free law (E=0.1)", isoflop_runs({**chin, "E": 0.1}, sizes_per_budget=20, noise=0.01, seed=7)


def main():
    quick = "--quick" in sys.argv
    for name, runs in scenarios():
        t0 = time.perf_counter()
        res = ChinchillaFit().fit(runs).result_
        t_ours = time.perf_counter() - t0
        line = (f"{name:<28} runs={len(runs):<4} ours {t_ours:6.3f}s f={res.objective:.12g} "
                f"conv={res.converged}")
        if not quick:
            t_base, f_base, _ = baseline(runs)
            verdict = "ok" if res.objective <= f_base * (1 + 1e-12) else "HIGHER"
            line += f" | scipy {t_base:6.1f}s f={f_base:.12g} diff={res.objective - f_base:+.2e} {verdict}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
