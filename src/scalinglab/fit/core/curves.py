"""Runs and learning curves as the laws other than Approach 3 need them.

A table holds either one row per run (final losses) or learning curves (``run_id`` and ``step`` columns,
one row per eval). From curves: the final rows, and the lower envelope of loss over FLOPs or tokens across
all runs, as Chinchilla Approach 1 (Hoffmann et al. 2022, §3.1) and Kaplan's L(D), L(C_min) take it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import NotFittable
from . import table as runs_table

ENVELOPE_POINTS = 1500  # Hoffmann et al. 2022 §3.1: "1500 logarithmically spaced FLOP values"


def prepare(table) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """Canonical, validated (finals, curves or None, {canonical: source column}) of a RunTable (or a bare
    DataFrame); made once per RunTable, copies returned, so a caller may change them."""
    table = runs_table.RunTable.of(table)
    if "frames" not in table._prepared:
        table._prepared["frames"] = _prepare(table)
    finals, curves, source = table._prepared["frames"]
    return finals.copy(), None if curves is None else curves.copy(), dict(source)


def _prepare(table: runs_table.RunTable) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    canon, source = table.canonical()
    canon = runs_table.validate_numbers(canon)
    if "run_id" not in canon:
        canon["run_id"] = [f"row{i + 1}" for i in range(len(canon))]
    curves = None
    if "step" in canon:
        curves = canon.sort_values(["run_id", "step"], kind="stable").reset_index(drop=True)
        if "C" not in curves:
            curves["C"] = 6 * curves["N"] * curves["D"]
    finals = runs_table.final_rows(canon).reset_index(drop=True)
    return finals, curves, source


def need_curves(curves: pd.DataFrame | None, what: str) -> pd.DataFrame:
    if curves is None:
        raise NotFittable(f"{what} needs learning curves: a table with run_id and step columns "
                              f"(one row per eval), e.g. `scalinglab fit STUDY_DIR` or a study export")
    return curves


def after_transient(curves: pd.DataFrame, transient: float) -> pd.DataFrame:
    """Each run's evals from ``transient`` x its last step on (warm-up and the early plateau left out)."""
    last = curves.groupby("run_id")["step"].transform("max")
    return curves[curves["step"] >= transient * last]


class Envelope:
    """The lowest loss over runs at ``n_points`` log-spaced values of ``x`` ("C" or "D").

    Each run's curve past the transient is interpolated linearly in (log x, log loss) within its own range;
    the values of x span the range at least two runs reach (one run alone is no comparison).
    Built once; ``frame(run_ids)`` gives the envelope over any subset of runs (a bootstrap resample), with
    the winning run's run_id, N (and N_nonembed) and its interpolated D or C at each x.
    """

    def __init__(self, curves: pd.DataFrame, x: str, *, transient: float = 0.1,
                 n_points: int = ENVELOPE_POINTS):
        cur = after_transient(curves, transient)
        groups = [g for _, g in cur.groupby("run_id", sort=True) if len(g) >= 2]
        if len(groups) < 2:
            raise NotFittable(f"an envelope over {x} needs at least 2 runs with 2+ evals past the transient; "
                                  f"got {len(groups)}")
        self.x, self.other = x, ("D" if x == "C" else "C")
        # every value of the envelope compares at least two runs: past the second-largest end (or before the
        # second-smallest start) one run has it alone, won by whichever overshoots its budget most
        starts, ends = sorted(g[x].min() for g in groups), sorted(g[x].max() for g in groups)
        lo, hi = starts[1], ends[-2]
        if not hi > lo:
            lo, hi = starts[0], ends[-1]
        self.grid = np.geomspace(lo, hi, n_points)
        lg = np.log(self.grid)
        self.logl = np.full((len(groups), n_points), np.nan)
        self.logo = np.full((len(groups), n_points), np.nan)
        for i, g in enumerate(groups):
            gx = np.log(g[x].to_numpy())
            order = np.argsort(gx, kind="stable")
            gx = gx[order]
            inside = (lg >= gx[0]) & (lg <= gx[-1])
            self.logl[i, inside] = np.interp(lg[inside], gx, np.log(g["loss"].to_numpy()[order]))
            self.logo[i, inside] = np.interp(lg[inside], gx, np.log(g[self.other].to_numpy()[order]))
        self.run_ids = np.array([g["run_id"].iloc[0] for g in groups])
        self.N = np.array([g["N"].iloc[0] for g in groups], dtype=float)
        self.N_nonembed = (np.array([g["N_nonembed"].iloc[0] for g in groups], dtype=float)
                           if "N_nonembed" in cur else None)

    def frame(self, run_ids=None) -> pd.DataFrame:
        if run_ids is None:
            rows = np.arange(len(self.run_ids))
        else:
            rows = np.flatnonzero(np.isin(self.run_ids, run_ids))
        logl = self.logl[rows]
        col = np.flatnonzero(np.isfinite(logl).any(axis=0))
        if len(rows) < 2 or len(col) == 0:
            raise NotFittable(f"an envelope over {self.x} needs at least 2 runs")
        win = rows[np.nanargmin(logl[:, col], axis=0)]
        out = {self.x: self.grid[col], "loss": np.exp(self.logl[win, col]),
               self.other: np.exp(self.logo[win, col]), "run_id": self.run_ids[win], "N": self.N[win]}
        if self.N_nonembed is not None:
            out["N_nonembed"] = self.N_nonembed[win]
        return pd.DataFrame(out)


def envelope(curves: pd.DataFrame, x: str, *, transient: float = 0.1, n_points: int = ENVELOPE_POINTS,
             run_ids=None) -> pd.DataFrame:
    """The envelope over ``x`` of all runs (or of ``run_ids``): see Envelope."""
    return Envelope(curves, x, transient=transient, n_points=n_points).frame(run_ids)


def budgets(finals: pd.DataFrame, tolerance: float = 0.1) -> pd.Series:
    """Each run's IsoFLOP budget: the ``budget`` column, or runs grouped by C within ``tolerance`` (log)."""
    if "budget" in finals:
        return finals["budget"]
    if "C" not in finals:
        raise NotFittable("IsoFLOP budgets need a budget or C/flops column")
    order = np.argsort(np.log(finals["C"].to_numpy()))
    logc = np.log(finals["C"].to_numpy())[order]
    label = np.zeros(len(logc), dtype=int)
    for i in range(1, len(logc)):
        label[i] = label[i - 1] + (logc[i] - logc[i - 1] > tolerance)
    out = np.empty(len(logc))
    for k in np.unique(label):
        out[order[label == k]] = np.exp(logc[label == k].mean())
    return pd.Series(out, index=finals.index, name="budget")
