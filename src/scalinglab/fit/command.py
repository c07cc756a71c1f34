"""`scalinglab.fit(RUNS, law=...)`: the `fit` command as a function, returning what `fit` prints (a fit's
``summary()`` is its text): one fit when one is asked (a FitResult for Approach 3, a LawFit otherwise), a
list for ``law="all"``. ``scalinglab.fit`` is this package made callable (callable.py).

    import scalinglab
    fit = scalinglab.fit("runs.csv", bootstrap=200)            # Approach 3
    fits = scalinglab.fit("STUDY_DIR", law="all")               # every law the runs allow
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from ..errors import ScalingLabError

FORM_LAWS = ("auto", "interaction", "farseer")


def load_runs(source) -> "object":
    """A RunTable from a DataFrame, a RunTable, a CSV/Parquet path (any trainer's columns, read as `fit`
    reads them) or a study directory (its learning curves, whose last rows are the finals)."""
    from .core.table import RunTable
    from .core.table import load_runs as read
    if isinstance(source, (pd.DataFrame, RunTable)):
        return RunTable.of(source)
    path = Path(source)
    if path.is_dir():
        from ..studydir import StudyDir
        with StudyDir(path).store() as store:
            runs = store.curve_table().with_context(**store.model_context())
        if len(runs) == 0:
            raise ScalingLabError(f"{path}: the study has no finished runs yet")
        return runs
    runs, _ = read(path, {})
    return runs


def fit(runs, law: str = "chinchilla", *, approach: str | None = None, bootstrap: int = 0, seed: int = 0,
        transient: float = 0.1, delta: float = 1e-3, loss: str = "huber", fixed_E: float | None = None):
    """`scalinglab fit RUNS --law LAW [--approach A]`: one fit when one is asked (a FitResult for
    Approach 3, a LawFit otherwise), a list for ``law="all"`` or an ``approach="all"``; ``law`` "auto" (or
    "interaction", "farseer") is the backtest's choice of form, with its selection in
    ``fit.settings["selection"]``."""
    from .backtest import select
    from .chinchilla.approach3 import ChinchillaFit
    from .every import fit_every, plan_fits
    table = load_runs(runs)
    context = dict(table.context)

    def with_context(f):
        return dataclasses.replace(f, settings=dict(f.settings) | context) if context else f
    if law in FORM_LAWS:
        if approach is not None:
            raise ScalingLabError(f"`approach` applies to law chinchilla, not {law}", params=("approach",))
        chosen, _ = select(table, pin=None if law == "auto" else law, bootstrap=bootstrap, seed=seed)
        return with_context(chosen)
    todo = plan_fits(law, approach)

    def approach3(t):
        fitter = ChinchillaFit(loss=loss, delta=delta, fixed_E=fixed_E, bootstrap=bootstrap, seed=seed)
        return fitter.fit(t).result_
    fits, skipped = fit_every(table, todo, approach3=approach3, bootstrap=bootstrap, seed=seed,
                              transient=transient, delta=delta)
    if not fits:
        raise ScalingLabError("no law could be fitted: "
                              + "; ".join(f"{s['law']} {s['approach']}: {s['reason']}" for s in skipped))
    fits = [with_context(f) for f in fits]
    return fits[0] if len(todo) == 1 else fits
