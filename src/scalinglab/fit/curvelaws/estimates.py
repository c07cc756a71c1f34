"""What the whole-curve laws are used for: a running model's final loss from its curve so far, the
leave-one-out check of those estimates over a study, and curves read from a table or a study's store."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ...errors import ScalingLabError
from .curve import Curve
from .fitter import fit_curves
from .result import CurveFit


def estimate_final(curve: Curve, *, law: str = "multi-power", reference: CurveFit | None = None,
                   bootstrap: int = 20, seed: int = 0) -> dict:
    """The final loss of a run that is still training, from its curve so far: ``curve.lr`` is the whole
    schedule (every step to the end), ``curve.steps`` / ``curve.loss`` what has been measured.

    Without ``reference`` the law is fitted to the measured points and evaluated at the last step; early
    in a run that curve cannot tell how much the LR's fall will lower the loss (a WSD run has not decayed
    at all before its cool-down): then a warning says so and the estimate is not converged. With
    ``reference`` (a fit of other runs' whole curves: the same model size's, or the study's) only the
    scale A is fitted here and every other parameter is the reference's: over the 5-30 points of a short
    run's first half, freeing L0 and alpha as well moved estimates by up to 10% (docs/fitting.md). The
    interval is a prediction interval (the segment bootstrap's spread and the points' scatter).
    -> {step, fraction, final, interval, converged, warnings, decay_from}."""
    fixed = {k: v for k, v in reference.params.items() if k != "A"} if reference is not None else None
    fit = fit_curves([curve], law, name=curve.name, bootstrap=bootstrap, seed=seed, fixed=fixed)
    last = np.array([len(curve.lr) - 1])
    final = float(fit.predict(curve.lr, last)[0])
    band = fit.predict_interval(curve.lr, last, kind="prediction") if bootstrap else None
    if band is not None and not (np.isfinite(band[0][0]) and np.isfinite(band[1][0])):
        band = None  # resamples whose law could not be evaluated there: no interval rather than a half one
    step = int(curve.steps.max()) + 1
    flags = list(fit.warnings)
    if reference is not None and not reference.converged:
        flags.append(f"the reference fit ({reference.key}) did not converge")
    beyond = _past_reference(curve, reference) if reference is not None else None
    if beyond:
        flags.append(beyond)
    return {"step": step, "fraction": step / len(curve.lr), "final": final,
            "interval": [float(band[0][0]), float(band[1][0])] if band else None,
            "converged": fit.converged and (reference is None or reference.converged), "warnings": flags,
            "decay_from": reference.key if reference is not None else "own curve"}


def _past_reference(curve: Curve, reference: CurveFit) -> str | None:
    """Why an estimate with ``reference`` extrapolates, or None: the run's whole schedule (its LR area at its
    last step) goes past the areas the reference's curves covered (issue 29: an estimate of 1.422 [1.408,
    1.438] for a run that measured 1.483, with no word that it went past its reference). A warning: the
    estimate stands (the law may extrapolate well), the reader knows it is an extrapolation."""
    area = float(np.sum(curve.lr))
    lo, hi = (reference.settings.get("area") or [None, None])[:2]
    if hi is not None and not lo <= area <= 1.01 * hi:  # 1%: the steps after a curve's last eval
        return (f"this run's LR area at its end ({area:.4g}) lies outside the reference fit's curves "
                f"({lo:.4g}..{hi:.4g}): the estimate extrapolates {reference.key}")
    return None


@dataclass(frozen=True)
class RunEstimator:
    """What the trainer calls (train(..., estimator=RunEstimator(reference))) to estimate a running model's
    final loss from its probe curve so far: ``estimate_final`` on at most ``max_points`` of its points past
    warm-up (1.5-3.5 s on 2 busy cores; 45 s on 195 points). The trainer imports nothing from fit/: it is
    handed this callable. ``reference``: a whole-curve fit (CurveFit.to_dict) whose parameters the estimate
    keeps, refitting only its scale. Picklable, so a worker process or a Ray task can carry it."""

    reference: Mapping | None = None
    min_points: int = 8
    max_points: int = 64

    def __call__(self, lr: np.ndarray, points: list[dict], warmup: int, seed: int) -> dict:
        """``lr``: the run's LR at every step; ``points``: its curve so far ({step, probe} each, 1-based
        steps); ``warmup``: its warm-up steps."""
        pts = [p for p in points if p["step"] > warmup + 1]
        if len(pts) < self.min_points:
            return {"step": points[-1]["step"], "fraction": points[-1]["step"] / len(lr), "final": math.nan,
                    "interval": None, "converged": False,
                    "warnings": [f"fewer than {self.min_points} curve points past warm-up"],
                    "decay_from": "own curve"}
        pts = pts[::-1][::-(-len(pts) // self.max_points)][::-1]  # every k-th, ending with the latest
        curve = Curve("run", lr, np.array([p["step"] - 1 for p in pts]), np.array([p["probe"] for p in pts]))
        return estimate_final(curve, seed=seed,
                              reference=CurveFit.from_dict(self.reference) if self.reference else None)


def leave_one_out_estimates(runs: Mapping[str, tuple[float, Curve]], fractions=(0.3, 0.5), *,
                            law: str = "multi-power", min_points: int = 3) -> list[dict]:
    """For each run of a study ({run_id: (N, its whole curve)}): its final loss estimated from its first
    ``fractions`` with the law fitted to the study's other runs (those of its size when that fit
    converges, else all the others), against the last measured point. -> rows run_id, N, fraction, step,
    final, measured, error, reference, converged."""
    rows, whole = [], {}  # whole: the fit of all runs (of a size, or of the study), the refits' start

    def without(rid, key, curves):
        if key not in whole:
            whole[key] = fit_curves(curves + [runs[rid][1]], law)
        return fit_curves(curves, law, name=f"{key} without {rid}", start=whole[key].params)
    for rid, (n, curve) in runs.items():
        same = [c for k, (m, c) in runs.items() if k != rid and m == n]
        ref = without(rid, f"N={n:.4g}", same) if same else None
        if ref is None:
            others = [c for k, (_, c) in runs.items() if k != rid]
            if not others:
                continue
            ref = without(rid, "all", others)
        for frac in fractions:
            keep = curve.steps + 1 <= frac * len(curve.lr)
            if keep.sum() < min_points:
                continue
            e = estimate_final(Curve(curve.name, curve.lr, curve.steps[keep], curve.loss[keep]), law=law,
                               reference=ref, bootstrap=0)
            rows.append({"run_id": rid, "N": n, "fraction": frac, "step": e["step"], "final": e["final"],
                         "measured": float(curve.loss[-1]), "error": e["final"] / float(curve.loss[-1]) - 1,
                         "reference": ref.approach, "converged": e["converged"]})
    return rows


def relative_errors(fit: CurveFit, curve: Curve) -> np.ndarray:
    """(predicted - measured) / measured at each measured step."""
    return fit.predict(curve) / curve.loss - 1.0


def curves_from_table(table, *, group: str | None = None) -> tuple[dict[str, list[Curve]], list[str]]:
    """Curves from a table with columns run, step, lr, loss (one row per measured step; ``group`` names a
    column of model sizes, one fit per value). A run's per-step LR is its rows' LR interpolated linearly
    between their steps; before its first row, a linear warm-up from 0 is assumed (what a run logged
    from the end of its warm-up had). -> ({group value: curves}, notes on what was assumed)."""
    import pandas as pd
    need = [c for c in ("run", "step", "lr", "loss") if c not in table.columns]
    if need:
        raise ScalingLabError(f"a curve table needs columns run, step, lr, loss; missing {', '.join(need)}")
    if group is not None and group not in table.columns:
        raise ScalingLabError(f"no column {group!r} to group the curves by")
    table = table.copy()
    for col in ("step", "lr", "loss"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    bad = table[["step", "lr", "loss"]].isna().any(axis=1) | (table["loss"] <= 0) | (table["lr"] < 0)
    if bad.any():
        raise ScalingLabError(f"{int(bad.sum())} row(s) of the curve table have a missing, non-numeric or "
                              "impossible step, lr or loss (loss must be > 0, lr >= 0)")
    out, notes = {}, []
    for key, frame in table.groupby(group if group else (lambda _: "all"), sort=True):
        curves = []
        for run, g in frame.groupby("run", sort=True):
            g = g.sort_values("step").drop_duplicates("step", keep="last")
            steps = g["step"].to_numpy(dtype=int)
            if len(steps) < 3:
                raise ScalingLabError(f"run {run!r} has {len(steps)} row(s); a curve needs at least 3")
            lr = np.interp(np.arange(steps.max() + 1), np.concatenate([[0], steps]),
                           np.concatenate([[0.0], g["lr"].to_numpy(float)]))
            if steps.min() > 1:
                notes.append(f"run {run}: no rows before step {steps.min()}; a linear warm-up from 0 assumed")
            keep = steps >= 1
            curves.append(Curve(str(run), lr, steps[keep], g["loss"].to_numpy(float)[keep]))
        out[str(key)] = curves
    return out, notes


def estimate_summary(rows: list[dict]) -> dict:
    """Per fraction of a run: how far the estimates of its final loss were (median and max |error|)."""
    out = {}
    for frac in sorted({r["fraction"] for r in rows}):
        errors = np.abs([r["error"] for r in rows if r["fraction"] == frac])
        out[f"{frac:g}"] = {"n": int(len(errors)), "median_abs_error": float(np.median(errors)),
                            "max_abs_error": float(errors.max()),
                            "n_converged": int(sum(r["converged"] for r in rows if r["fraction"] == frac))}
    return out


STUDY_POINTS = 64  # points per run a study's fits use (of up to 256 kept): a fit's cost grows as points^2


def curves_of_runs(rows, max_points: int | None = STUDY_POINTS) -> dict[str, tuple[float, Curve]]:
    """A study's stored curves (SQLiteStore.training_curves) as {run_id: (N, Curve)}: each run's points
    past its warm-up against the LR of every step recomputed from its spec (exact, not interpolated); the
    loss is the fixed validation probe where the run recorded one, else the training windows' mean. A WSD
    branch's curve holds its trunk's points up to the cool-down it branched at. ``max_points``: every
    k-th point, ending with the last (neighbouring points of the probe differ by its noise alone; the
    default study's 19 runs fitted and estimated in ~170 s with all points)."""
    import json

    from ...plan import schedules
    from ...plan.spec import RunSpec
    out = {}
    for run_id, g in rows.groupby("run_id", sort=True):
        spec = RunSpec.from_dict(json.loads(g["spec"].iloc[0]))
        lr = schedules.of_run(spec, float(g["peak_lr"].iloc[0]))
        # a point at step s closes the window ending at 0-based step s - 1
        g = g[g["step"] > schedules.warmup_of(spec) + 1]
        if max_points and len(g) > max_points:
            g = g.iloc[::-1].iloc[::-(-len(g) // max_points)].iloc[::-1]
        loss = g["probe"] if g["probe"].notna().all() else g["loss"]
        if len(g) >= 3:
            out[str(run_id)] = (float(g["N"].iloc[0]), Curve(str(run_id), lr, g["step"].to_numpy(int) - 1,
                                                             loss.to_numpy(float)))
    return out

