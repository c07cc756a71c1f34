"""Data-constrained scaling (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models",
arXiv 2305.16264): when U unique tokens are repeated, the data term of the Chinchilla law sees the
effective data D' = U + U R* (1 - exp(-R/R*)), R = D/U - 1 repetitions (their eq. 5), so L(N, D) =
E + A/N^alpha + B/D'^beta. R* (the repetitions after which more epochs are worth 1/e of fresh data; the
paper fits 15.4) is fitted with the law. Rows need `unique_tokens` (or `n_epochs`, from which U = D/epochs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import NotFittable
from . import laws
from .core.curves import prepare
from .core.lawfit import Law, LawFit, Points, make_result


def _loss(X, p):
    U = X["U"]
    R = np.maximum(X["D"] / U - 1.0, 0.0)
    D_eff = laws.data_constrained_tokens(U, R, R_star=p["R_star"])
    return laws.chinchilla_loss(X["N"], D_eff, E=p["E"], A=p["A"], B=p["B"], alpha=p["alpha"], beta=p["beta"])


LAW = Law(name="data-constrained",
          formula="E + A/N^alpha + B/D'^beta, D' = U + U R*(1 - exp(-R/R*)), R = D/U - 1",
          inputs=("N", "D", "U"), params=("E", "A", "B", "alpha", "beta", "R_star"),
          scales=frozenset({"E", "A", "B", "R_star"}), fn=_loss,
          starts={"E": (0.5, 1.5), "A": (1e1, 1e3, 1e5), "B": (1e1, 1e3, 1e5), "alpha": (0.2, 0.5, 1.0),
                  "beta": (0.2, 0.5, 1.0), "R_star": (1.0, 5.0, 15.0, 50.0)},
          cite="Muennighoff et al. 2023, arXiv 2305.16264, eq. 5")


def fit_data_constrained(table: pd.DataFrame, *, bootstrap: int = 0, seed: int = 0, level: float = 0.95,
                         delta: float = 1e-3) -> LawFit:
    finals, _, _ = prepare(table)
    if "U" not in finals:
        if "epochs" not in finals:
            raise NotFittable("the data-constrained law needs a unique_tokens or n_epochs column")
        finals = finals.assign(U=finals["D"] / finals["epochs"])
    if not (finals["D"] > finals["U"] * 1.01).any():
        raise NotFittable("the data-constrained law needs runs that repeat data (D > unique_tokens); none do")
    codes, _ = pd.factorize(finals["run_id"])
    inputs = {k: finals[k].to_numpy(float) for k in ("N", "D", "U")}
    pts = Points(inputs, finals["loss"].to_numpy(float), codes)
    return make_result(LAW, "data-constrained", "D'", pts, delta=delta, bootstrap=bootstrap, seed=seed,
                       level=level, settings={"n_params_kind": "total", "points_are": "final runs"})
