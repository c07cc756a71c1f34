"""The candidate forms of L(N, D): one registry entry per form, each fitted to final (N, D, loss) runs.

No single form extrapolates best on every data set (DESIGN.md §11): Chinchilla's additive form, Kaplan's
L(N, D) with an irreducible term, a form whose data term depends on N, and a Farseer-style form whose data
term's scale and exponent are smooth in log N. `fit/backtest.py` decides between them on the user's runs.

A form is declared once, here: its name, formula, parameters, law function (fit/laws.py) and the form it
nests (whose fit, with the extra parameters at 0, is one of its starts, so the richer form never ends at a
worse optimum than the one it extends). Chinchilla is fitted by Approach 3's own solver (4500 starts);
the others by the shared robust fitter (fit/core/lawfit.py). Every result is a FitBase: predict, optimal
(numerically where there is no closed form), intervals, save/load.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import NotFittable, ScalingLabError
from . import laws
from .chinchilla.approach3 import ChinchillaFit
from .core import table as runs_table
from .core.lawfit import Law, Points, make_result

N_REF = 1e8  # Farseer-style beta(N) = beta (N / N_REF)^kappa: kappa's reference size, fixed so files compare


@dataclass(frozen=True)
class Form:
    """One candidate form of L(N, D): what `--law NAME` and `--law auto` fit."""

    name: str
    formula: str
    params: tuple[str, ...]
    cite: str
    law: Law | None = None  # None: Chinchilla, fitted by Approach 3's solver
    nests: str | None = None  # the form this one extends (its fit is a start here)
    nest_values: Mapping[str, float] | None = None  # this form's extra parameters at the nested form

    @property
    def n_params(self) -> int:
        return len(self.params)

    def loss(self, N, D, params: Mapping[str, float]) -> np.ndarray:
        """The form's L(N, D) under ``params`` (a saved candidate's, say)."""
        X = {"N": np.asarray(N, float), "D": np.asarray(D, float)}
        if self.law is None:  # Chinchilla: fitted by Approach 3's solver, its law is eq. 2
            return laws.chinchilla_loss(X["N"], X["D"], **params)
        return self.law.fn(X, params)


def _interaction(X, p):
    return laws.interaction_loss(X["N"], X["D"], E=p["E"], A=p["A"], alpha=p["alpha"], B=p["B"],
                                 gamma=p["gamma"], beta=p["beta"])


def _farseer(X, p):
    return laws.farseer_loss(X["N"], X["D"], E=p["E"], A=p["A"], alpha=p["alpha"], B=p["B"], gamma=p["gamma"],
                             beta=p["beta"], kappa=p["kappa"], N_ref=N_REF)


def _kaplan(X, p):
    return laws.kaplan_loss_nd(X["N"], X["D"], N_c=p["N_c"], D_c=p["D_c"], alpha_N=p["alpha_N"],
                               alpha_D=p["alpha_D"], E=p["E"])


_E = (0.5, 1.5)
_SCALE = (1e1, 1e3)
_EXP = (0.2, 0.5)

KAPLAN = Law(name="L(N,D) + E", formula="E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
             inputs=("N", "D"), params=("N_c", "D_c", "alpha_N", "alpha_D", "E"),
             scales=frozenset({"N_c", "D_c", "E"}), fn=_kaplan,
             starts={"N_c": (1e4, 1e8, 1e12), "D_c": (1e4, 1e8, 1e12), "alpha_N": (0.1, 0.4),
                     "alpha_D": (0.1, 0.4), "E": _E},
             cite="Kaplan et al. 2020, arXiv 2001.08361, eq. 1.5, with an irreducible term")
INTERACTION = Law(name="interaction", formula="E + A/N^alpha + B/(N^gamma D^beta)", inputs=("N", "D"),
                  params=("E", "A", "alpha", "B", "gamma", "beta"), scales=frozenset({"E", "A", "B"}),
                  signed=frozenset({"gamma"}), fn=_interaction,
                  starts={"E": _E, "A": _SCALE, "alpha": _EXP, "B": (1e2, 1e4), "gamma": (-0.1, 0.0, 0.1),
                          "beta": _EXP},
                  cite="an N x D interaction in the data term (Chinchilla's form at gamma = 0)")
FARSEER = Law(name="farseer", formula="E + A/N^alpha + B N^-gamma D^-(beta (N/1e8)^kappa)", inputs=("N", "D"),
              params=("E", "A", "alpha", "B", "gamma", "beta", "kappa"), scales=frozenset({"E", "A", "B"}),
              signed=frozenset({"gamma", "kappa"}), fn=_farseer,
              starts={"E": _E, "A": _SCALE, "alpha": _EXP, "B": (1e2, 1e4), "gamma": (-0.1, 0.1),
                      "beta": _EXP, "kappa": (-0.05, 0.0, 0.05)},
              cite="after Li et al. 2025 (Farseer), arXiv 2506.10972: the data term's scale and exponent "
                   "smooth in log N, here each linear in log N (7 parameters, for ~20 runs)")

FORMS: dict[str, Form] = {f.name: f for f in (
    Form("chinchilla", "E + A/N^alpha + B/D^beta", ("E", "A", "B", "alpha", "beta"),
         "Hoffmann et al. 2022, arXiv 2203.15556, eq. 2 (Approach 3)"),
    Form("kaplan", KAPLAN.formula, KAPLAN.params, KAPLAN.cite, KAPLAN),
    Form("interaction", INTERACTION.formula, INTERACTION.params, INTERACTION.cite, INTERACTION,
         nests="chinchilla", nest_values={"gamma": 0.0}),
    Form("farseer", FARSEER.formula, FARSEER.params, FARSEER.cite, FARSEER,
         nests="interaction", nest_values={"kappa": 0.0}),
)}


def form_of(name: str) -> Form:
    if name not in FORMS:
        raise ScalingLabError(f"unknown law form {name!r}: choose one of {', '.join(FORMS)} (or auto)",
                              params=("law",))
    return FORMS[name]


def finals_nd(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run (its final eval): N (all parameters, as given), D, loss, C (the table's own compute
    when it has one, else 6ND) and budget when given, sorted by C."""
    canon, _ = runs_table.RunTable.of(table).canonical()
    finals = runs_table.final_rows(runs_table.validate_numbers(canon)).reset_index(drop=True)
    if "C" not in finals:
        finals = finals.assign(C=6.0 * finals["N"] * finals["D"])
    if "run_id" not in finals:
        finals = finals.assign(run_id=np.arange(len(finals)).astype(str))
    return finals.sort_values("C", kind="stable").reset_index(drop=True)


def _points(finals: pd.DataFrame) -> Points:
    return Points({"N": finals["N"].to_numpy(float), "D": finals["D"].to_numpy(float)},
                  finals["loss"].to_numpy(float), np.arange(len(finals)))


def fit_form(name: str, finals: pd.DataFrame, *, bootstrap: int = 0, seed: int = 0, level: float = 0.95,
             nested=None):
    """Fit one form to final runs (``finals_nd``); ``nested``: the fit of the form it extends (its start;
    fitted here when not given)."""
    form = form_of(name)
    if len(finals) <= form.n_params + 1:
        raise NotFittable(f"the {name} form has {form.n_params} parameters: it needs at least "
                          f"{form.n_params + 2} runs, got {len(finals)}")
    if form.law is None:
        return ChinchillaFit(bootstrap=bootstrap, seed=seed, ci_level=level).fit(finals).result_
    if nested is None and form.nests is not None:  # a richer form always starts from the one it extends
        nested = fit_form(form.nests, finals)
    starts = []
    if nested is not None and form.nest_values is not None:
        starts.append(dict(nested.params) | dict(form.nest_values))
    fit = make_result(form.law, "kaplan" if name == "kaplan" else name, "L(N,D)", _points(finals),
                      bootstrap=bootstrap, seed=seed, level=level, extra_starts=starts,
                      settings={"candidate": name, "n_column": "N"})
    return fit


def fit_forms(finals: pd.DataFrame, names=None, **kw) -> dict[str, object]:
    """Every form in ``names`` (default: every registered form) that the runs allow, nested ones started
    from the form they extend."""
    out: dict[str, object] = {}
    for name in (tuple(FORMS) if names is None else names):
        nest = FORMS[name].nests
        try:
            out[name] = fit_form(name, finals, nested=out.get(nest) if nest else None, **kw)
        except NotFittable:
            continue
    return out
