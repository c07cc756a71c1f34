"""The Python API: `scalinglab.fit`, `scalinglab.plan`, `scalinglab.compare`, the CLI's commands as
functions that return the objects the CLI prints (a fit's ``summary()`` is `fit`'s text, a Plan's
``to_dict()`` is `plan --json`, compare's dict is `compare --json`). Torch-free, as the CLI's analysis is.

    import scalinglab
    fit = scalinglab.fit("runs.csv", bootstrap=200)            # Approach 3 (a FitResult)
    fits = scalinglab.fit("STUDY_DIR", law="all")               # every law the runs allow (a list)
    print(scalinglab.plan(fit, flops=1e21).loss)                 # a Plan
    print(scalinglab.plan("chinchilla", params=70e9, tokens=1.4e12).loss)
    result = scalinglab.compare(["clean", "noisy"])             # the multiplier table
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import pandas as pd

from .errors import ScalingLabError

FORM_LAWS = ("auto", "interaction", "farseer")


def load_runs(source) -> "object":
    """A RunTable from a DataFrame, a RunTable, a CSV/Parquet path (any trainer's columns, read as `fit`
    reads them) or a study directory (its learning curves, whose last rows are the finals)."""
    from .fit.core.table import RunTable
    from .fit.core.table import load_runs as read
    if isinstance(source, (pd.DataFrame, RunTable)):
        return RunTable.of(source)
    path = Path(source)
    if path.is_dir():
        from .studydir import StudyDir
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
    from .fit.backtest import select
    from .fit.chinchilla.approach3 import ChinchillaFit
    from .fit.every import fit_every, plan_fits
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


def plan(law="chinchilla", *, flops: float | None = None, params: float | None = None,
         tokens: float | None = None, select: str | None = None, vocab_size: int | None = None,
         n_ctx: int | None = None, allow_unconverged: bool = False, unique_tokens: float | None = None):
    """`scalinglab plan`: a Plan (the compute-optimal run for ``flops``, or the loss of ``params`` trained on
    ``tokens``) under ``law``: a published law's name, a fit (any result of ``fit``), a FIT.json path, or
    a study directory (its budget planned in its own model family, as `plan --law STUDY_DIR` does)."""
    from .predict import plan_budget, plan_budget_in_study, plan_point, resolve_law
    if flops is not None and (params is not None or tokens is not None):
        raise ScalingLabError("give either `flops`, or `params` with `tokens`, not both",
                              params=("flops", "n_params", "n_tokens"))
    if flops is None and (params is None or tokens is None):
        raise ScalingLabError("give `flops` for a compute-optimal plan, or both `params` and `tokens`",
                              params=("flops", "n_params", "n_tokens"))
    resolved = resolve_law(str(law), select) if isinstance(law, (str, Path)) else law
    if flops is not None and isinstance(law, (str, Path)) and Path(law).is_dir():
        return plan_budget_in_study(law, resolved, flops, allow_unconverged=allow_unconverged,
                                    unique_tokens=unique_tokens)
    if flops is not None:
        return plan_budget(resolved, flops, vocab_size=vocab_size, n_ctx=n_ctx,
                           allow_unconverged=allow_unconverged, unique_tokens=unique_tokens)
    return plan_point(resolved, params, tokens, allow_unconverged=allow_unconverged,
                      unique_tokens=unique_tokens)


def compare(paths: Sequence[str | Path], law: str | None = None, budgets: Sequence[float] | None = None
            ) -> dict:
    """`scalinglab compare A B ... --json`: each study's (or fit file's) law side by side and the compute
    multiplier of each against the first (the reference) at the budgets, with intervals."""
    from .compare import LAW
    from .compare import compare as _compare
    result, _ = _compare(list(paths), law=law or LAW, budgets=sorted(budgets) if budgets else None)
    return result
