"""Every law the data allow, fitted in one pass: what `scalinglab fit --law all` prints and the report draws.

The order matters once: B_crit from the noise scale is fitted before Kaplan's laws, which use it for
S_min (eq. 5.4) and C_min (eq. 5.5).
"""
from __future__ import annotations

from typing import Callable

import pandas as pd

from ..errors import NotFittable, ScalingLabError
from .curves import prepared_once

LAW_CHOICES = ("chinchilla", "kaplan", "data-constrained", "all")  # `fit --law`


def plan_fits(law: str, approach: str | None = None) -> list[tuple[str, str]]:
    """(law, approach-or-form) pairs to fit for ``--law`` and ``--approach``."""
    from .kaplan import FORMS
    if law not in LAW_CHOICES:
        raise ScalingLabError(f"unknown `law` {law!r}: choose one of {', '.join(LAW_CHOICES)}",
                              params=("law",))
    if law in ("kaplan", "data-constrained") and approach is not None:
        raise ScalingLabError(f"`approach` applies to `law` chinchilla (Approaches 1, 2, 3), not {law}",
                              params=("approach", "law"))
    chin = {"1": ["1"], "2": ["2"], "3": ["3"], "all": ["1", "2",
                                                        "3"]}[approach or ("all" if law == "all" else "3")]
    todo = [("chinchilla", a) for a in chin] if law in ("chinchilla", "all") else []
    if law in ("kaplan", "all"):
        todo += [("bcrit", "noise scale"), ("bcrit", "batch sweep")] + [("kaplan", f) for f in FORMS]
    if law in ("data-constrained", "all"):
        todo.append(("data-constrained", "D'"))
    return todo


def fit_every(table: pd.DataFrame, todo: list[tuple[str, str]], *,
              approach3: Callable[[pd.DataFrame], object],
              bootstrap: int = 0, seed: int = 0, transient: float = 0.1, delta: float = 1e-3
              ) -> tuple[list, list[dict]]:
    """(fits, skipped): each fit in ``todo`` the table allows; ``skipped`` gives the reason for each other.
    With one fit asked for, a data problem is raised instead. ``approach3(table)`` makes Approach 3's
    FitResult (its settings live with the caller)."""
    from .approaches import approach1, approach2
    from .data_constrained import fit_data_constrained
    from .kaplan import fit_bcrit, fit_bcrit_sweep, fit_kaplan
    kw = dict(bootstrap=bootstrap, seed=seed)
    fits, skipped, bcrit = [], [], None
    with prepared_once():  # the table is canonicalised once, not once per law
        for law, which in todo:
            try:
                if law == "chinchilla":
                    if which == "3":
                        fits.append(approach3(table))
                    elif which == "1":
                        fits.append(approach1(table, transient=transient, **kw))
                    else:
                        fits.append(approach2(table, **kw))
                elif law == "bcrit" and which == "noise scale":
                    bcrit = fit_bcrit(table, transient=transient, delta=delta, **kw)
                    fits.append(bcrit)
                elif law == "bcrit":
                    fits.append(fit_bcrit_sweep(table, delta=delta, **kw))
                elif law == "data-constrained":
                    fits.append(fit_data_constrained(table, delta=delta, **kw))
                else:
                    for with_E in (False, True):
                        fits.append(fit_kaplan(table, which, with_E=with_E, transient=transient, bcrit=bcrit,
                                               delta=delta, **kw))
            except NotFittable as exc:  # the data do not allow this law; a bad table is raised as it is
                if len(todo) == 1:
                    raise
                skipped.append({"law": law, "approach": which, "reason": str(exc)})
    return fits, skipped
