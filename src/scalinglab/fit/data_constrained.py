"""Data-constrained scaling (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models",
arXiv 2305.16264): when U unique tokens are repeated, the data term of the Chinchilla law sees the
effective data D' = U + U R_D* (1 - exp(-R_D/R_D*)), R_D = D/U - 1 repetitions (their eq. 5), and a model
larger than is compute-optimal for U sees the effective parameters N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)),
U_N = min(N, N_opt(U)), R_N = N/U_N - 1 (their eq. 6: parameters past U_N are worth less, as repeated
tokens are). L(N, D) = E + A/N'^alpha + B/D'^beta. N_opt(U) is the law's own: the N whose compute-optimal
data is U (alpha A N^-alpha = beta B U^-beta). R_D* is ``R_star``; R_N* is ``R_N_star``, fitted only when
some run has N > N_opt(U) (else it is not identified, said as a note, and the 6-parameter law is kept).
Rows need `unique_tokens` (or `n_epochs`, from which U = D/epochs). `plan --unique-tokens U` allocates C
for U unique tokens.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..errors import NotFittable
from . import laws
from .core.curves import prepare
from .core.lawfit import Law, LawFit, Points, make_result


def n_opt_for(U, p):
    """The N whose compute-optimal data under the law's own constants is U (alpha A N^-alpha =
    beta B U^-beta)."""
    return (p["alpha"] * p["A"] / (p["beta"] * p["B"]) * U ** p["beta"]) ** (1.0 / p["alpha"])


def effective_params(N, U, p):
    """N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)), U_N = min(N, N_opt(U)), R_N = N/U_N - 1 (eq. 6)."""
    with np.errstate(all="ignore"):
        U_N = np.minimum(N, n_opt_for(U, p))
        R_N = np.maximum(N / U_N - 1.0, 0.0)
        return laws.data_constrained_tokens(U_N, R_N, R_star=p["R_N_star"])


def _loss(X, p):
    U = X["U"]
    R = np.maximum(X["D"] / U - 1.0, 0.0)
    D_eff = laws.data_constrained_tokens(U, R, R_star=p["R_star"])
    N_eff = effective_params(X["N"], U, p) if "R_N_star" in p else X["N"]
    return laws.chinchilla_loss(N_eff, D_eff, E=p["E"], A=p["A"], B=p["B"], alpha=p["alpha"], beta=p["beta"])


CITE = "Muennighoff et al. 2023, arXiv 2305.16264, eq. 5 (D') and eq. 6 (N')"
LAW = Law(name="data-constrained",
          formula="E + A/N^alpha + B/D'^beta, D' = U + U R*(1 - exp(-R/R*)), R = D/U - 1",
          inputs=("N", "D", "U"), params=("E", "A", "B", "alpha", "beta", "R_star"),
          scales=frozenset({"E", "A", "B", "R_star"}), fn=_loss,
          starts={"E": (0.5, 1.5), "A": (1e1, 1e3, 1e5), "B": (1e1, 1e3, 1e5), "alpha": (0.2, 0.5, 1.0),
                  "beta": (0.2, 0.5, 1.0), "R_star": (1.0, 5.0, 15.0, 50.0)},
          cite=CITE)
LAW_N = Law(name="data-constrained",
            formula="E + A/N'^alpha + B/D'^beta, D' = U + U R*(1 - exp(-R/R*)), N' = U_N + U_N R_N*(1 - "
                    "exp(-R_N/R_N*)), U_N = min(N, N_opt(U))",
            inputs=("N", "D", "U"), params=("E", "A", "B", "alpha", "beta", "R_star", "R_N_star"),
            scales=frozenset({"E", "A", "B", "R_star", "R_N_star"}), fn=_loss,
            starts={"R_N_star": (1.0, 5.0, 20.0)}, cite=CITE)
EXCESS = 1.05  # a run with N above this factor of N_opt(U) informs R_N*


def law_of(params) -> Law:
    """The declared law a fit's parameters belong to (R_N* fitted or not)."""
    return LAW_N if "R_N_star" in params else LAW


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
    settings = {"n_params_kind": "total", "points_are": "final runs"}
    kw = dict(delta=delta, bootstrap=bootstrap, seed=seed, level=level, settings=settings)
    fit = make_result(LAW, "data-constrained", "D'", pts, **kw)
    excess = inputs["N"] / n_opt_for(inputs["U"], fit.params)
    if not (excess > EXCESS).any():  # no run past N_opt(U): R_N* says nothing here
        return dataclasses.replace(fit, diagnostics=dict(fit.diagnostics) | {"not_identified": [
            *fit.not_identified, f"R_N* (excess parameters, eq. 6) is not fitted: no run has more parameters "
            f"than are compute-optimal for its unique data (N / N_opt(U) at most {excess.max():.3g}); the "
            "law here treats every parameter as fresh"]})
    start = dict(fit.params) | {"R_N_star": 5.0}
    law = dataclasses.replace(LAW_N, starts={k: (v,) for k, v in start.items()}
                              | {"R_N_star": (1.0, 5.0, 20.0)})
    return make_result(law, "data-constrained", "D',N'", pts, extra_starts=[start], **kw)
