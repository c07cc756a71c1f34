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
        # each run's rows by index arrays, not a pandas group per run (5000 runs: 4 s of groupby overhead)
        codes, ids = pd.factorize(cur["run_id"], sort=True)
        by_run = np.argsort(codes, kind="stable")  # rows of each run, in table order
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(ids)))])
        keep = np.flatnonzero(np.diff(bounds) >= 2)
        if len(keep) < 2:
            raise NotFittable(f"an envelope over {x} needs at least 2 runs with 2+ evals past the transient; "
                                  f"got {len(keep)}")
        self.x, self.other = x, ("D" if x == "C" else "C")
        lx, lloss, lother = (np.log(cur[c].to_numpy(dtype=float)) for c in (x, "loss", self.other))
        runs = [by_run[bounds[i]:bounds[i + 1]] for i in keep]
        # every value of the envelope compares at least two runs: past the second-largest end (or before the
        # second-smallest start) one run has it alone, won by whichever overshoots its budget most
        xs = cur[x].to_numpy(dtype=float)
        starts, ends = sorted(xs[r].min() for r in runs), sorted(xs[r].max() for r in runs)
        lo, hi = starts[1], ends[-2]
        if not hi > lo:
            lo, hi = starts[0], ends[-1]
        self.grid = np.geomspace(lo, hi, n_points)
        lg = np.log(self.grid)
        # log loss per (run, grid value), +inf where the run does not reach it (so argmin needs no NaN pass)
        self.logl = np.full((len(runs), n_points), np.inf)
        self.logo = np.full((len(runs), n_points), np.nan)
        for i, r in enumerate(runs):
            order = np.argsort(lx[r], kind="stable")
            gx = lx[r][order]
            inside = (lg >= gx[0]) & (lg <= gx[-1])
            self.logl[i, inside] = np.interp(lg[inside], gx, lloss[r][order])
            self.logo[i, inside] = np.interp(lg[inside], gx, lother[r][order])
        first = by_run[bounds[keep]]  # each run's first row
        self.run_ids = np.asarray(ids)[keep]
        self._index = pd.Index(self.run_ids)
        self.N = cur["N"].to_numpy(dtype=float)[first]
        self.N_nonembed = cur["N_nonembed"].to_numpy(dtype=float)[first] if "N_nonembed" in cur else None

    def frame(self, run_ids=None) -> pd.DataFrame:
        if run_ids is None:
            rows = np.arange(len(self.run_ids))
        else:
            # by a hash index: np.isin on string ids compares every pair (5000 runs: 1 s per resample)
            rows = np.unique(self._index.get_indexer(pd.unique(np.asarray(run_ids))))
            rows = rows[rows >= 0]
        if len(rows) < 2:
            raise NotFittable(f"an envelope over {self.x} needs at least 2 runs")
        logl = self.logl if len(rows) == len(self.run_ids) else self.logl[rows]
        best = logl.argmin(axis=0)
        col = np.flatnonzero(np.isfinite(logl[best, np.arange(logl.shape[1])]))
        if len(col) == 0:
            raise NotFittable(f"an envelope over {self.x} needs at least 2 runs")
        win = rows[best[col]]
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
