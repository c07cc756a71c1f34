"""Every law the data allow, fitted in one pass: what `scalinglab fit --law all` prints, and what a study
saves in fits.json for its report to draw (``fit_study_laws``). The families and their order are
fit/registry.py's."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from ..errors import NotFittable, ScalingLabError
from .core.table import RunTable
from .fitfile import write_fits
from .registry import FAMILIES

LAW_CHOICES = ("chinchilla", "kaplan", "data-constrained", "all")  # `fit --law`
REPORT_BOOTSTRAP = 200  # resamples of each law a study's fits.json keeps (its figures' bands)


def plan_fits(law: str, approach: str | None = None) -> list[tuple[str, str]]:
    """(law, approach-or-form) pairs to fit for ``--law`` and ``--approach``."""
    if law not in LAW_CHOICES:
        raise ScalingLabError(f"unknown `law` {law!r}: choose one of {', '.join(LAW_CHOICES)}",
                              params=("law",))
    if law in ("kaplan", "data-constrained") and approach is not None:
        raise ScalingLabError(f"`approach` applies to `law` chinchilla (Approaches 1, 2, 3), not {law}",
                              params=("approach", "law"))
    chin = {"1": ["1"], "2": ["2"], "3": ["3"], "all": ["1", "2",
                                                        "3"]}[approach or ("all" if law == "all" else "3")]
    wanted = {"chinchilla": ("chinchilla",), "kaplan": ("bcrit", "kaplan"),
              "data-constrained": ("data-constrained",), "all": ("chinchilla", "bcrit", "kaplan",
                                                                 "data-constrained")}[law]
    return [(fam.name, which) for fam in FAMILIES if fam.fit is not None and fam.name in wanted
            for which in (chin if fam.name == "chinchilla" else fam.approaches)]


def fit_every(table: RunTable | pd.DataFrame, todo: list[tuple[str, str]], *,
              approach3: Callable[[pd.DataFrame], object],
              bootstrap: int = 0, seed: int = 0, transient: float = 0.1, delta: float = 1e-3
              ) -> tuple[list, list[dict]]:
    """(fits, skipped): each fit in ``todo`` the table allows; ``skipped`` gives the reason for each other.
    With one fit asked for, a data problem is raised instead. ``approach3(table)`` makes Approach 3's
    FitResult (its settings live with the caller)."""
    fitters = {fam.name: fam.fit for fam in FAMILIES if fam.fit is not None}
    context = {"approach3": approach3, "transient": transient, "delta": delta,
               "kw": dict(bootstrap=bootstrap, seed=seed)}
    fits, skipped = [], []
    table = RunTable.of(table)  # canonicalised once, however many laws read it
    for law, which in todo:
        try:
            fits += fitters[law](table, which, context)
        except NotFittable as exc:  # the data do not allow this law; a bad table is raised as it is
            if len(todo) == 1:
                raise
            skipped.append({"law": law, "approach": which, "reason": str(exc)})
    return fits, skipped


def fit_study_laws(path: Path, table: pd.DataFrame, fit3, *, bootstrap: int = REPORT_BOOTSTRAP,
                   context: Mapping | None = None) -> tuple[list, list[dict]]:
    """Every law a study's runs allow (Approach 3 is the study's own ``fit3``), saved with bootstrap draws
    and points at ``path`` (a study's fits.json, studydir.FITS_FILE): what its report draws. ``context``
    (the study's vocabulary, context length, run noise) goes into every fit's settings, so `plan --law
    fits.json --fit KEY` suggests shapes of the study's family, as it does with fit.json. Returns what it
    wrote, (fits, skipped), for a caller that draws them next (the report after `run`)."""
    fits, skipped = fit_every(table, plan_fits("all"), approach3=lambda _: fit3, bootstrap=bootstrap)
    if context:
        fits = [dataclasses.replace(f, settings=dict(f.settings) | dict(context)) for f in fits]
    write_fits(path, fits, skipped, indent=None)
    return fits, skipped
