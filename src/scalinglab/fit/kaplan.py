"""The laws of Kaplan et al. 2020 (arXiv 2001.08361) fitted to runs and learning curves.

L(N) eq. 1.1, L(D) eq. 1.2, L(C_min) eq. 1.3, L(N, D) eq. 1.5, L(N, S_min) eq. 1.6, each in the pure
form and with an irreducible term E; and the critical batch size B_crit(L) = B*/L^(1/alpha_B) (eq. 1.4)
from the gradient noise scale the trainer records (McCandlish et al. 2018). N is Kaplan's non-embedding
count when the table has one (`n_params_nonembed`); the result says which N it used.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..errors import NotFittable, ScalingLabError
from . import laws
from .core.curves import Envelope, after_transient, need_curves, prepare
from .core.lawfit import Law, LawFit, Points, make_result
from .laws import PF_DAY

CITE = "Kaplan et al. 2020, arXiv 2001.08361"

_SCALE_STARTS = (1e2, 1e5, 1e8, 1e11, 1e14)
_EXP_STARTS = (0.03, 0.1, 0.3, 1.0)
_E_STARTS = (0.1, 0.5, 1.0, 2.0)


def _law(name, formula, inputs, params, fn, eq, with_E=False, starts=None):
    starts = dict(starts or {})
    for p in params:
        starts.setdefault(p, _EXP_STARTS if p.startswith("alpha") else _SCALE_STARTS)
    scales = {p for p in params if not p.startswith("alpha")}
    if with_E:
        params, formula = params + ("E",), "E + " + formula
        starts["E"], scales = _E_STARTS, scales | {"E"}
    return Law(name=name + (" + E" if with_E else ""), formula=formula, inputs=inputs, params=params,
               scales=frozenset(scales), fn=(lambda X, p: fn(X, p) + p.get("E", 0.0)), starts=starts,
               cite=f"{CITE}, eq. {eq}")


def law(form: str, with_E: bool) -> Law:
    """The Kaplan law ``form`` ("L(N)", "L(D)", "L(C)", "L(N,D)", "L(N,S)") as a Law to fit."""
    if form == "L(N)":
        return _law(form, "(N_c/N)^alpha_N", ("N",), ("N_c", "alpha_N"),
                    lambda X, p: laws.kaplan_loss_n(X["N"], N_c=p["N_c"], alpha_N=p["alpha_N"]),
                    "1.1", with_E)
    if form == "L(D)":
        return _law(form, "(D_c/D)^alpha_D", ("D",), ("D_c", "alpha_D"),
                    lambda X, p: laws.kaplan_loss_d(X["D"], D_c=p["D_c"], alpha_D=p["alpha_D"]),
                    "1.2", with_E)
    if form == "L(C)":
        return _law(form, "(C_c/C_min)^alpha_C  (C in FLOPs)", ("C",), ("C_c", "alpha_C"),
                    lambda X, p: laws.kaplan_loss_c(X["C"], C_c=p["C_c"], alpha_C=p["alpha_C"]),
                    "1.3", with_E, starts={"C_c": (1e6, 1e10, 1e14, 1e18, 1e22)})
    if form == "L(N,D)":
        return _law(form, "[(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D", ("N", "D"),
                    ("N_c", "D_c", "alpha_N", "alpha_D"),
                    lambda X, p: laws.kaplan_loss_nd(X["N"], X["D"], N_c=p["N_c"], D_c=p["D_c"],
                                                     alpha_N=p["alpha_N"], alpha_D=p["alpha_D"]),
                    "1.5", with_E)
    if form == "L(N,S)":
        return _law(form, "(N_c/N)^alpha_N + (S_c/S_min)^alpha_S", ("N", "S_min"),
                    ("N_c", "S_c", "alpha_N", "alpha_S"),
                    lambda X, p: laws.kaplan_loss_ns(X["N"], X["S_min"], N_c=p["N_c"], S_c=p["S_c"],
                                                     alpha_N=p["alpha_N"], alpha_S=p["alpha_S"]),
                    "1.6", with_E,
                    starts={"S_c": (1.0, 1e1, 1e2, 1e3, 1e4)})
    raise ScalingLabError(f"unknown Kaplan law {form!r}: choose one of {', '.join(FORMS)}")


FORMS = ("L(N)", "L(D)", "L(C)", "L(N,D)", "L(N,S)")

BCRIT = Law(name="B_crit(L)", formula="B_crit = B_star / L^(1/alpha_B)  (tokens)", inputs=("L",),
            params=("B_star", "alpha_B"), scales=frozenset({"B_star"}),
            fn=lambda X, p: laws.critical_batch_size(X["L"], B_star=p["B_star"], alpha_B=p["alpha_B"]),
            starts={"B_star": (1e2, 1e4, 1e6, 1e8, 1e10), "alpha_B": (0.05, 0.1, 0.2, 0.5, 1.0)},
            cite=f"{CITE}, eq. 1.4; noise scale: McCandlish et al. 2018, arXiv 1812.06162")


def _n_column(finals: pd.DataFrame, source: dict) -> tuple[str, str]:
    """Kaplan's N is non-embedding: use it when the table has it."""
    if "N_nonembed" in finals:
        return "N_nonembed", "nonembed"
    return "N", "total" if source.get("N") == "n_params_total" else "as given"


def _points(frame: pd.DataFrame, inputs: dict[str, str], target: str = "loss") -> Points:
    codes, _ = pd.factorize(frame["run_id"])
    return Points({k: frame[col].to_numpy(dtype=float) for k, col in inputs.items()},
                  frame[target].to_numpy(dtype=float), codes)


def fit_kaplan(table: pd.DataFrame, form: str, *, with_E: bool = False, transient: float = 0.1,
               bcrit: LawFit | None = None, bootstrap: int = 0, seed: int = 0, level: float = 0.95,
               delta: float = 1e-3) -> LawFit:
    """Fit one Kaplan law. L(N): the best run of each size. L(D), L(C): with curves, the lower envelope of
    loss over tokens / FLOPs across runs (the compute-efficient frontier for C_min); from final rows, the
    best run per D / per budget; C_min = C/(1 + B/B_crit(L)) (eq. 5.5) when ``bcrit`` is given.
    L(N,D): every final run. L(N,S): curves past ``transient`` of each run,
    with S_min = S/(1 + B_crit(L)/B) (eq. 5.4) from ``bcrit`` (a fitted B_crit law), or S itself with a
    warning when there is none."""
    finals, curves, source = prepare(table)
    n_col, n_kind = _n_column(finals, source)
    the_law = law(form, with_E)
    warnings, rebuild, run_ids, context = [], None, None, None
    kw = dict(delta=delta, bootstrap=bootstrap, seed=seed, level=level)
    if form == "L(N)":
        best = finals.loc[finals.groupby(n_col)["loss"].idxmin()].sort_values(n_col)
        if len(best) >= 3 and np.corrcoef(np.log(best[n_col]), best["loss"])[0, 1] >= 0:
            warnings.append("the best loss of each size does not fall with N: these runs are not trained to "
                            "convergence (Kaplan's L(N) needs converged or early-stopped runs, not an "
                            "IsoFLOP grid)")
        pts = _points(best, {"N": n_col})
        points_are = "best final run of each size"
    elif form in ("L(D)", "L(C)"):
        x = form[2]
        if curves is not None:
            if x == "C" and bcrit is not None:  # C_min = C / (1 + B/B_crit(L)), Kaplan 2020 eq. 5.5
                batch = curves["D"] / curves["step"].clip(lower=1)
                b_crit = bcrit.predict(L=curves["loss"].to_numpy())
                curves = curves.assign(C=curves["C"] / (1 + batch / b_crit))
            elif x == "C":
                warnings.append("no B_crit law: C used for C_min (right only when the batch is far "
                                "below B_crit)")
            env = Envelope(curves, x, transient=transient, n_points=200)

            def from_envelope(pick, x=x):
                return _points(env.frame(np.unique(pick)), {x: x})
            rebuild, run_ids = from_envelope, curves["run_id"].unique()
            pts = rebuild(run_ids)
            points_are = f"log-spaced samples of the envelope of {len(run_ids)} runs' curves"
        else:
            if x == "C" and "C" not in finals:
                finals = finals.assign(C=6 * finals["N"] * finals["D"])
            key = "budget" if (x == "C" and "budget" in finals) else x
            best = finals.loc[finals.groupby(key)["loss"].idxmin()]
            pts = _points(best, {x: x})
            points_are = f"best final run per {'budget' if key == 'budget' else x}"
            warnings.append(f"no learning curves: L({x}) fitted on the best final run per "
                            f"{'budget' if key == 'budget' else x}, not on the envelope")
    elif form == "L(N,D)":
        pts = _points(finals, {"N": n_col, "D": "D"})
        points_are = "final runs"
    else:  # L(N,S)
        cur = after_transient(need_curves(curves, "Kaplan L(N,S)"), max(transient, 1e-9))
        cur = cur[cur["step"] > 0]
        B = cur["D"].to_numpy() / cur["step"].to_numpy()  # tokens per step
        if bcrit is not None:
            b_crit = bcrit.predict(L=cur["loss"].to_numpy())
            s_min = laws.min_steps(cur["step"].to_numpy(), B, b_crit)
        else:
            s_min = cur["step"].to_numpy(dtype=float)
            warnings.append("no B_crit law: S used for S_min (right only when the batch is far below B_crit)")
        cur = cur.assign(S_min=s_min)
        ncur = "N_nonembed" if "N_nonembed" in cur else "N"
        pts = _points(cur, {"N": ncur, "S_min": "S_min"})
        context = {c: cur[c].to_numpy(dtype=float) for c in ("C", "step", "D")}
        points_are = "curve evals past the transient"
    uses_n = "N" in the_law.inputs
    settings = {"n_params_kind": n_kind if uses_n else None, "transient": transient, "points_are": points_are}
    fit = make_result(the_law, "kaplan", form, pts, warnings=warnings, settings=settings, rebuild=rebuild,
                      run_ids=run_ids, context=context, **kw)
    if form == "L(C)":  # C_c in PF-days beside FLOPs: Kaplan's unit
        pf_days = {"C_c_pf_days": fit.params["C_c"] / PF_DAY}
        fit = dataclasses.replace(fit, diagnostics=dict(fit.diagnostics) | pf_days)
    return fit


def fit_bcrit(table: pd.DataFrame, *, bootstrap: int = 0, seed: int = 0, level: float = 0.95,
              delta: float = 1e-3, transient: float = 0.1) -> LawFit:
    """B_crit(L) = B*/L^(1/alpha_B) through the gradient noise scale B_simple (tokens) recorded per eval:
    B_simple estimates B_crit (McCandlish et al. 2018, §2.3; Kaplan 2020 §5.1)."""
    _, curves, _ = prepare(table)
    curves = need_curves(curves, "the critical batch size from the noise scale")
    if "noise_scale" not in curves:
        raise NotFittable("the critical batch size needs a noise_scale column (gradient noise scale per "
                          "eval, in tokens), as `scalinglab train` records")
    cur = after_transient(curves, transient)
    cur = cur[np.isfinite(cur["noise_scale"]) & (cur["noise_scale"] > 0)]
    if len(cur) < 3:
        raise NotFittable(f"the critical batch size needs 3+ positive noise-scale estimates; got {len(cur)}")
    pts = _points(cur, {"L": "loss"}, target="noise_scale")
    return make_result(BCRIT, "bcrit", "noise scale", pts, delta=delta, bootstrap=bootstrap, seed=seed,
                       level=level, settings={"source": "gradient noise scale B_simple",
                                              "transient": transient,
                                 "points_are": "noise-scale estimates at evals past the transient"})


def steps_to_loss(curves: pd.DataFrame, targets: np.ndarray) -> pd.DataFrame:
    """Per run and target loss: the first step (interpolated in log step) at which the running minimum of
    its curve reaches the target; rows (run_id, batch, L, S) only where the run gets there."""
    rows = []
    for rid, g in curves.groupby("run_id", sort=True):
        g = g[g["step"] > 0]
        if len(g) < 2:
            continue
        steps = g["step"].to_numpy(float)
        best = np.minimum.accumulate(g["loss"].to_numpy(float))
        batch = float(np.median(g["D"].to_numpy(float) / steps))
        for L in targets:
            hit = np.flatnonzero(best <= L)
            if len(hit) == 0 or hit[0] == 0:
                continue
            i = hit[0]
            frac = (np.log(best[i - 1]) - np.log(L)) / (np.log(best[i - 1]) - np.log(best[i]))
            rows.append({"run_id": rid, "batch": batch, "L": float(L),
                         "S": float(np.exp(np.log(steps[i - 1])
                                           + frac * (np.log(steps[i]) - np.log(steps[i - 1]))))})
    return pd.DataFrame(rows, columns=["run_id", "batch", "L", "S"])


def sweep_critical_batch(curves: pd.DataFrame, n_targets: int = 12) -> pd.DataFrame:
    """B_crit at several losses from a batch-size sweep (runs of one model at different batch sizes).

    For each target loss L, the steps S each batch size B needs follow S = S_min + E_min/B (McCandlish et
    al. 2018 eq. 2.11: (S/S_min - 1)(E/E_min - 1) = 1 with E = B S; Kaplan 2020 eq. 5.4-5.5): a straight
    line in 1/B, fitted by least squares on relative errors. B_crit(L) = E_min/S_min.
    """
    batches = (curves["D"] / curves["step"].where(curves["step"] > 0)).groupby(curves["run_id"]).median()
    if batches.round().nunique() < 3:
        raise NotFittable(f"a batch-size sweep needs runs at 3+ batch sizes; got {batches.round().nunique()}")
    finals = curves.groupby("run_id")["loss"].min()
    lo, hi = finals.max(), curves.groupby("run_id")["loss"].quantile(0.5).min()
    if not hi > lo:
        raise NotFittable("the sweep's runs share no range of losses to compare steps at")
    targets = np.geomspace(lo, hi, n_targets)
    s = steps_to_loss(curves, targets)
    rows = []
    for L, g in s.groupby("L"):
        if g["batch"].nunique() < 3:
            continue
        X = np.column_stack([np.ones(len(g)), 1.0 / g["batch"].to_numpy()]) / g["S"].to_numpy()[:, None]
        (s_min, e_min), *_ = np.linalg.lstsq(X, np.ones(len(g)), rcond=None)
        if s_min > 0 and e_min > 0:
            rows.append({"L": float(L), "S_min": float(s_min), "E_min": float(e_min),
                         "B_crit": float(e_min / s_min), "n_batches": int(g["batch"].nunique())})
    if len(rows) < 3:
        raise NotFittable(f"the batch sweep gave B_crit at {len(rows)} loss values; need 3+")
    return pd.DataFrame(rows)


def fit_bcrit_sweep(table: pd.DataFrame, *, bootstrap: int = 0, seed: int = 0, level: float = 0.95,
                    delta: float = 1e-3) -> LawFit:
    """B_crit(L) = B*/L^(1/alpha_B) through B_crit measured by a batch-size sweep (see
    sweep_critical_batch)."""
    _, curves, _ = prepare(table)
    curves = need_curves(curves, "the critical batch size from a batch sweep")
    points = sweep_critical_batch(curves)
    pts = Points({"L": points["L"].to_numpy()}, points["B_crit"].to_numpy(), np.arange(len(points)))
    return make_result(BCRIT, "bcrit", "batch sweep", pts, delta=delta, bootstrap=bootstrap, seed=seed,
                       level=level, settings={"source": "S_min/E_min of a batch-size sweep",
                                              "points": points.to_dict("records"),
                                 "points_are": "B_crit at target losses of the sweep"})
