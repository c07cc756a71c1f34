"""Runs simulated from a known Chinchilla law: the demo table, tests that recover parameters, benchmarks.

``python -m scalinglab.simulate`` rewrites the demo table shipped in ``scalinglab/assets/demo_runs.csv``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .fit.laws import chinchilla_loss, chinchilla_optimal

DEMO_TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
DEMO_PATH = Path(__file__).parent / "assets" / "demo_runs.csv"


def isoflop_runs(params: dict, *, budgets=None, sizes_per_budget: int = 9, span: float = 16.0,
                 noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """An IsoFLOP grid: per budget C, sizes log-spaced over ``span``x around the true optimum, D = C/(6N).

    Loss = L(N, D) * exp(eps), eps ~ Normal(0, noise): multiplicative noise, as run-to-run spread is.
    """
    budgets = np.geomspace(6e18, 3e21, 8) if budgets is None else np.asarray(budgets, float)
    rng = np.random.default_rng(seed)
    rows = []
    law = {k: params[k] for k in ("E", "A", "B", "alpha", "beta")}
    for C in budgets:
        n_opt, _ = chinchilla_optimal(C, A=law["A"], B=law["B"], alpha=law["alpha"], beta=law["beta"])
        for N in n_opt * np.geomspace(1 / np.sqrt(span), np.sqrt(span), sizes_per_budget):
            D = C / (6 * N)
            loss = float(chinchilla_loss(N, D, **law)) * float(np.exp(rng.normal(0.0, noise)))
            rows.append({"run_id": f"c{C:.3g}-n{N:.4g}", "N": float(N), "D": float(D), "C": float(C),
                         "budget": float(C), "loss": loss})
    return pd.DataFrame(rows)


def demo_runs() -> pd.DataFrame:
    """The shipped demo table: 8 budgets x 9 sizes from DEMO_TRUE, 1% noise, seed 0."""
    return isoflop_runs(DEMO_TRUE, noise=0.01, seed=0)


if __name__ == "__main__":
    DEMO_PATH.parent.mkdir(parents=True, exist_ok=True)
    from .atomic import writing
    with writing(DEMO_PATH) as tmp:
        demo_runs().to_csv(tmp, index=False, float_format="%.10g")
    print(f"wrote {DEMO_PATH}")
