"""Which form extrapolates on these runs? Rolling-origin backtests, the choice `--law auto` makes, and the
error model that widens the chosen law's prediction interval (DESIGN.md §11).

A backtest fits each candidate form (fit/forms.py) on the runs below a compute cut and predicts the runs
above it, for several cuts (the largest compute levels that leave enough runs below them). Every
prediction is kept with its extrapolation factor f = C / (largest C fitted). The score of a form is the
mean over cuts of its mean |log error| on the runs above the cut: one cut alone picks by luck (measured on
published ladders, issue 27), several cuts and a tie rule that prefers fewer parameters do not.

The chosen form's errors at its backtest points give its extrapolation error as a function of f (6ND over
the largest 6ND fitted): sd(f) = s x (1 + log2 f), s the rms of error / (1 + log2 f) over the points (the
further out, the wider); `FitBase.predict_interval(kind="prediction")` adds it in quadrature.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import NotFittable, ScalingLabError
from .core.threads import one_blas_thread
from .forms import FORMS, finals_nd, fit_form, fit_forms

MAX_CUTS = 4  # the largest compute levels used as cuts: later cuts test what a user asks (the next budget)
MIN_TEST = 1  # runs above a cut
TEST_SHARE = (0.05, 0.6)  # a cut leaves between 5% and 60% of the runs above it
LEVEL_GAP = math.log(1.15)  # compute values within 15% of each other are one level (an IsoFLOP budget)
TIE_RTOL = 0.10  # scores within 10% of the best...
TIE_ATOL = 0.001  # ...or within 0.1 percentage point tie: the form with fewer parameters wins
FACTOR_BINS = ((1.0, 2.0), (2.0, 4.0), (4.0, math.inf))  # extrapolation factors the table reports apart


def compute_levels(finals: pd.DataFrame) -> np.ndarray:
    """A compute level per run: its budget when the table has one, else its C, runs within 15% merged."""
    c = (finals["budget"] if "budget" in finals else finals["C"]).to_numpy(float)
    order = np.argsort(c, kind="stable")
    logc = np.log(c[order])
    group = np.concatenate([[0], np.cumsum(np.diff(logc) > LEVEL_GAP)])
    top = pd.Series(c[order]).groupby(group).transform("max").to_numpy()
    out = np.empty_like(c)
    out[order] = top
    return out


def cut_levels(finals: pd.DataFrame, min_train: int, max_cuts: int = MAX_CUTS) -> list[float]:
    """The compute levels to cut at: each leaves >= min_train runs at or below it and between
    TEST_SHARE of the runs above it; at most ``max_cuts``, spread evenly over the eligible levels (the
    largest always in)."""
    levels = compute_levels(finals)
    n = len(levels)
    lo_share, hi_share = TEST_SHARE
    ok = [float(lv) for lv in np.unique(levels)
          if (levels <= lv).sum() >= min_train and (levels > lv).sum() >= max(MIN_TEST, lo_share * n)
          and (levels > lv).sum() <= hi_share * n]
    if len(ok) <= max_cuts:
        return ok
    pick = np.unique(np.round(np.linspace(len(ok) - 1, 0, max_cuts)).astype(int))
    return [ok[i] for i in sorted(pick)]


@dataclass(frozen=True)
class Backtest:
    """Every form's prediction of every run above every cut; and each form's fit at each cut."""

    points: pd.DataFrame  # form, cut, run_id, N, D, C, factor, predicted, measured, error (log)
    fits: pd.DataFrame  # form, cut, n_train, converged, objective
    cuts: list[float]
    forms: tuple[str, ...]
    insample: dict[str, float] = field(default_factory=dict)  # form -> rms log residual on all runs

    def score(self, form: str) -> float:
        """Mean over cuts of the mean |log error| above the cut; inf when a cut could not be fitted."""
        p = self.points[self.points["form"] == form]
        per_cut = p.groupby("cut")["error"].apply(lambda e: float(np.mean(np.abs(e))))
        return float(per_cut.mean()) if len(per_cut) == len(self.cuts) and len(per_cut) else math.inf

    def table(self) -> list[dict]:
        """One row per form: parameters, in-sample rms, backtest mean/max |error| overall and by factor,
        how many of its cut fits converged, its score."""
        rows = []
        for form in self.forms:
            p = self.points[self.points["form"] == form]
            f = self.fits[self.fits["form"] == form]
            e = np.abs(p["error"].to_numpy())
            row = {"form": form, "n_params": FORMS[form].n_params, "formula": FORMS[form].formula,
                   "insample_rms": self.insample.get(form), "score": _finite(self.score(form)),
                   "mean_abs_error": float(e.mean()) if len(e) else None,
                   "max_abs_error": float(e.max()) if len(e) else None, "n_points": int(len(e)),
                   "cuts_fitted": int(len(f)), "cuts_converged": int(f["converged"].sum()), "by_factor": []}
            for lo, hi in FACTOR_BINS:
                m = (p["factor"] >= lo) & (p["factor"] < hi)
                if m.any():
                    eb = np.abs(p.loc[m, "error"].to_numpy())
                    row["by_factor"].append({"factor": [lo, _finite(hi)], "n": int(m.sum()),
                                             "mean_abs_error": float(eb.mean()),
                                             "max_abs_error": float(eb.max())})
            rows.append(row)
        return rows

    def choose(self, unusable: dict[str, str] | None = None) -> tuple[str, str]:
        """(form, why): the lowest score among the forms not ``unusable`` (form -> why: its fit on every run
        is not converged, say); scores tied with it (TIE_RTOL / TIE_ATOL) go to fewer parameters, then to
        the registry's order (Chinchilla first)."""
        unusable = dict(unusable or {})
        scores = {f: self.score(f) for f in self.forms if f not in unusable}
        best = min(scores.values(), default=math.inf)
        if not math.isfinite(best):
            raise NotFittable("no usable candidate form could be fitted at every backtest cut")
        tol = max(TIE_RTOL * best, TIE_ATOL)
        tied = [f for f in scores if scores[f] <= best + tol]
        chosen = min(tied, key=lambda f: (FORMS[f].n_params, self.forms.index(f)))
        low = min(scores, key=scores.get)
        why = (f"lowest backtest error ({100 * scores[chosen]:.2f}% mean |error| over {len(self.cuts)} "
               f"cut{'s' if len(self.cuts) != 1 else ''})" if chosen == low else
               f"within {100 * tol:.2f} points of the lowest backtest error ({low}: {100 * best:.2f}%, "
               f"{chosen}: {100 * scores[chosen]:.2f}%) with fewer parameters")
        lower = [f for f in unusable if self.score(f) < scores[chosen]]
        if lower:
            why += "; not usable although lower: " + "; ".join(f"{f} ({unusable[f]})" for f in lower)
        return chosen, why

    def error_scale(self, form: str) -> float | None:
        """s of sd(f) = s (1 + log2 f): the rms of each backtest error over (1 + log2 f)."""
        p = self.points[self.points["form"] == form]
        if not len(p):
            return None
        x = 1.0 + np.log2(np.maximum(p["factor"].to_numpy(), 1.0))
        return float(np.sqrt(np.mean((p["error"].to_numpy() / x) ** 2)))


def _finite(v: float):
    return v if math.isfinite(v) else None


@one_blas_thread
def backtest(table: pd.DataFrame, forms=None, *, max_cuts: int = MAX_CUTS, full_fits=None) -> Backtest:
    """Rolling-origin backtest of ``forms`` on a table of runs (the final row of each run counts)."""
    finals = finals_nd(table)
    forms = tuple(FORMS) if forms is None else tuple(forms)
    need = max(FORMS[f].n_params for f in forms) + 2
    cuts = cut_levels(finals, need, max_cuts)
    if not cuts:
        raise NotFittable(f"a backtest needs at least {need} runs below a compute level and one above it "
                          f"(the largest form has {need - 2} parameters); these {len(finals)} runs spread "
                          f"over {len(np.unique(compute_levels(finals)))} compute level(s)")
    levels = compute_levels(finals)
    rows, fit_rows = [], []
    for cut in cuts:
        train, test = finals[levels <= cut], finals[levels > cut]
        c_fit = float((6 * train["N"] * train["D"]).max())  # factors as the law counts compute: 6ND
        for form, fit in fit_forms(train, forms).items():
            fit_rows.append({"form": form, "cut": cut, "n_train": int(len(train)),
                             "converged": bool(fit.converged), "objective": float(fit.objective)})
            with np.errstate(all="ignore"):
                pred = np.asarray(fit.predict(test["N"].to_numpy(float), test["D"].to_numpy(float)))
            err = np.log(pred / test["loss"].to_numpy(float))
            err = np.where(np.isfinite(err), err, np.log(1e3))  # a law that blows up is as wrong as can be
            rows.append(pd.DataFrame({"form": form, "cut": cut, "run_id": test["run_id"].to_numpy(),
                                      "N": test["N"].to_numpy(float), "D": test["D"].to_numpy(float),
                                      "C": test["C"].to_numpy(float),
                                      "factor": 6 * test["N"].to_numpy(float) * test["D"].to_numpy(float)
                                      / c_fit,
                                      "predicted": pred, "measured": test["loss"].to_numpy(float),
                                      "error": err}))
    points = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(_POINT_COLUMNS))
    insample = _insample(finals, full_fits or {})
    return Backtest(points=points, fits=pd.DataFrame(fit_rows, columns=["form", "cut", "n_train", "converged",
                                                                         "objective"]),
                    cuts=cuts, forms=forms, insample=insample)


@one_blas_thread
def select(table: pd.DataFrame, *, forms=None, pin: str | None = None, bootstrap: int = 0,
           seed: int = 0, level: float = 0.95, chinchilla=None):
    """(fit, backtest): the form with the lowest backtest error (or ``pin``) fitted on every run, with the
    bootstrap asked for; its settings carry ``selection`` (the choice, why, the table, every candidate's
    parameters and the error model that widens its prediction interval). ``chinchilla``: an Approach 3
    fit of the same runs already made (with its bootstrap), used as it is when Chinchilla is chosen."""
    forms = tuple(FORMS) if forms is None else tuple(forms)
    forms = forms if pin is None or pin in forms else forms + (pin,)
    if pin is not None and pin not in FORMS:
        raise ScalingLabError(f"unknown law form {pin!r}: choose one of {', '.join(FORMS)}", params=("law",))
    finals = finals_nd(table)
    full = fit_forms(finals, forms)
    if not full:
        raise NotFittable(f"no candidate form can be fitted to {len(finals)} runs")
    bt, dropped = _feasible_backtest(finals, tuple(f for f in forms if f in full), full)
    if bt is None:  # too few runs or compute levels to test any form out of sample
        chosen = "chinchilla" if "chinchilla" in full else next(iter(full))
        why = (f"no backtest possible ({dropped}): {chosen} by default, its extrapolation error unmeasured")
        bt = Backtest(points=pd.DataFrame(columns=list(_POINT_COLUMNS)), fits=pd.DataFrame(
            columns=["form", "cut", "n_train", "converged", "objective"]), cuts=[], forms=tuple(full),
            insample=_insample(finals, full))
    else:
        chosen, why = bt.choose(unusable(full, finals))
        if dropped:
            why += f"; not backtested: {dropped}"
    if pin is not None:
        why = f"pinned by the study or user (the backtest's choice: {chosen})"
        chosen = pin
        if pin not in full:
            raise NotFittable(f"the pinned form {pin} cannot be fitted to these {len(finals)} runs")
    nested = full.get(FORMS[chosen].nests) if FORMS[chosen].nests else None
    if chosen == "chinchilla" and chinchilla is not None:
        fit = chinchilla
    elif not bootstrap:
        fit = full[chosen]  # already fitted on every run: only a bootstrap needs the fit again
    else:
        fit = fit_form(chosen, finals, bootstrap=bootstrap, seed=seed, level=level, nested=nested)
    scale = bt.error_scale(chosen)
    selection = {
        "chosen": chosen, "why": why, "rule": f"lowest mean over {len(bt.cuts)} cuts of the mean |log error| "
        f"above each cut; ties ({100 * TIE_RTOL:g}% or {100 * TIE_ATOL:g} points) to fewer parameters",
        "cuts": bt.cuts, "table": bt.table(),
        "candidates": {f: {"key": g.key, "params": dict(g.params), "converged": bool(g.converged),
                           "warnings": list(g.warnings)} for f, g in full.items()},
        "error_model": {"form": "sd(f) = s (1 + log2 f), f = C / largest C fitted", "s": scale,
                        "n_points": int((bt.points["form"] == chosen).sum())}}
    fit = dataclasses.replace(fit, settings=dict(fit.settings) | {"selection": selection})
    return fit, bt


ALLOCATION_BAND = 10.0  # an optimum's D/N more than 10x outside the runs' D/N is not pinned by them


def unusable(full: dict, finals: pd.DataFrame) -> dict[str, str]:
    """Forms that cannot be the answer whatever their backtest: a fit on every run that did not converge
    (the fit is wrong), or one whose compute optimum 4x beyond the runs lies more than 10x outside the
    tokens per parameter the runs cover (the form does not pin the allocation there)."""
    out = {}
    tpp = (finals["D"] / finals["N"]).to_numpy(float)
    C = 4 * float((6 * finals["N"] * finals["D"]).max())
    for form, fit in full.items():
        if not fit.converged:
            out[form] = "not converged: " + "; ".join(fit.warnings)
            continue
        with np.errstate(all="ignore"):
            n, d = (float(v) for v in fit.optimal(C))
        ratio = d / n if n > 0 else math.inf
        if not (tpp.min() / ALLOCATION_BAND <= ratio <= tpp.max() * ALLOCATION_BAND):
            out[form] = (f"its optimum at 4x the largest run ({C:.3g} FLOPs, 6ND) has {ratio:.3g} tokens per "
                         f"parameter, more than {ALLOCATION_BAND:g}x outside the runs' {tpp.min():.3g}.."
                         f"{tpp.max():.3g}")
    return out


_POINT_COLUMNS = ("form", "cut", "run_id", "N", "D", "C", "factor", "predicted", "measured", "error")


def _feasible_backtest(finals, forms: tuple[str, ...], full) -> tuple[Backtest | None, str]:
    """The backtest of as many forms as the runs allow: the form with most parameters is dropped until the
    rest can be fitted below some cut. (backtest or None, what was left out and why)."""
    left_out = []
    while forms:
        try:
            return backtest(finals, forms, full_fits=full), "; ".join(left_out)
        except NotFittable as exc:
            big = max(forms, key=lambda f: (FORMS[f].n_params, forms.index(f)))
            left_out.append(f"{big} ({exc})" if len(forms) == 1 else big)
            forms = tuple(f for f in forms if f != big)
    return None, "; ".join(left_out)


def _insample(finals, full) -> dict[str, float]:
    out = {}
    for form, fit in full.items():
        with np.errstate(all="ignore"):
            r = np.log(np.asarray(fit.predict(finals["N"].to_numpy(float), finals["D"].to_numpy(float)))
                       / finals["loss"].to_numpy(float))
        out[form] = float(np.sqrt(np.mean(r ** 2)))
    return out


def candidate_predictions(selection: dict, N: float, D: float) -> dict[str, float]:
    """Every candidate's prediction of the loss at (N, D), from the parameters the selection kept."""
    return {name: float(FORMS[name].loss(N, D, cand["params"]))
            for name, cand in selection.get("candidates", {}).items() if name in FORMS}


def render_table(rows: list[dict], chosen: str | None = None) -> str:
    """The backtest table as text: one row per form."""
    head = (f"  {'form':<12}{'params':>6}{'in-sample':>11}{'backtest':>10}{'max':>8}"
            f"{'<2x':>8}{'2-4x':>8}{'>4x':>8}  cuts converged")
    lines = [head]
    for r in rows:
        bins = {tuple(b["factor"]): b["mean_abs_error"] for b in r["by_factor"]}
        cells = [_pct(bins.get(k)) for k in ((1.0, 2.0), (2.0, 4.0), (4.0, None))]
        mark = " <- chosen" if r["form"] == chosen else ""
        lines.append(f"  {r['form']:<12}{r['n_params']:>6}{_pct(r['insample_rms']):>11}{_pct(r['score']):>10}"
                     f"{_pct(r['max_abs_error']):>8}{cells[0]:>8}{cells[1]:>8}{cells[2]:>8}  "
                     f"{r['cuts_converged']}/{r['cuts_fitted']}{mark}")
    lines.append("  (|log error| in %: in-sample rms on every run; backtest = mean over cuts of the mean "
                 "|error| above the cut; by extrapolation factor 6ND / largest 6ND fitted)")
    return "\n".join(lines)


def _pct(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.2f}%"
