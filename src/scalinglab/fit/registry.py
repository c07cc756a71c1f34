"""Every law scalinglab fits, in one table: the family a fit file names (``law``), the approaches or forms
within it, the result type that holds its fits, its law function, and how `fit --law all` fits it.

A law is declared in its family's module: a form of L(N, D) is one entry of ``forms.FORMS`` (name,
formula, parameters, law function, the form it nests), read here at call time, so a form declared there
(even in a test) is fitted by `--law NAME` and `--law auto`, saved, loaded and planned with no other edit.
Kaplan's laws are declared in kaplan.py, the data-constrained law in data_constrained.py, Approach 3 in
chinchilla/, the whole-curve laws in curvelaws/curve.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from ..errors import ScalingLabError
from . import data_constrained, kaplan
from .chinchilla.approach1_2 import allocation_fn, approach1, approach2
from .chinchilla.result import FitResult
from .core.base import FitBase
from .core.lawfit import LawFit
from .curvelaws import LAWS as CURVE_LAWS
from .curvelaws import CurveFit
from .forms import FORMS


@dataclass(frozen=True)
class Family:
    """A family of laws (a fit file's ``law``): its approaches (or forms), the result type of its fits,
    ``law_fn(approach, params)``: the function of a saved fit's law, and ``fit(table, approach, context)``
    for `fit --law all` (None: fitted elsewhere: the forms by `--law NAME|auto`, the curve laws by
    `fit --curves`). ``context`` carries Approach 3's fitter, the fitted B_crit and the shared options."""

    name: str
    approaches: tuple[str, ...]
    result: type
    law_fn: Callable[[str, Mapping[str, float]], Callable | None] | None = None
    fit: Callable | None = None


def _fit_kaplan(table, which, ctx):
    return [kaplan.fit_kaplan(table, which, with_E=with_E, transient=ctx["transient"], bcrit=ctx.get("bcrit"),
                              delta=ctx["delta"], **ctx["kw"]) for with_E in (False, True)]


def _fit_bcrit(table, which, ctx):
    if which == "noise scale":
        ctx["bcrit"] = kaplan.fit_bcrit(table, transient=ctx["transient"], delta=ctx["delta"], **ctx["kw"])
        return [ctx["bcrit"]]
    return [kaplan.fit_bcrit_sweep(table, delta=ctx["delta"], **ctx["kw"])]


def _fit_chinchilla(table, which, ctx):
    if which == "3":
        return [ctx["approach3"](table)]
    if which == "1":
        return [approach1(table, transient=ctx["transient"], **ctx["kw"])]
    return [approach2(table, **ctx["kw"])]


# the order of `fit --law all`: B_crit from the noise scale before Kaplan's laws, which use it for S_min
# (eq. 5.4) and C_min (eq. 5.5)
FAMILIES: tuple[Family, ...] = (
    Family("chinchilla", ("1", "2", "3"), LawFit, lambda a, p: allocation_fn if a in ("1", "2") else None,
           _fit_chinchilla),
    Family("bcrit", ("noise scale", "batch sweep"), LawFit, lambda a, p: kaplan.BCRIT.fn, _fit_bcrit),
    Family("kaplan", kaplan.FORMS, LawFit, lambda a, p: kaplan.law(a, "E" in p).fn, _fit_kaplan),
    Family("data-constrained", ("D'",), LawFit, lambda a, p: data_constrained.law_of(p).fn,
           lambda t, w, ctx: [data_constrained.fit_data_constrained(t, delta=ctx["delta"], **ctx["kw"])]),
    *(Family(name, ("all",), CurveFit) for name in CURVE_LAWS),
)


def family(name: str) -> Family:
    """The family of a fit's ``law``: a declared one, or a registered form of L(N, D)."""
    for fam in FAMILIES:
        if fam.name == name:
            return fam
    if name in FORMS and FORMS[name].law is not None:
        law = FORMS[name].law
        return Family(name, ("L(N,D)",), LawFit, lambda a, p: law.fn)
    raise ScalingLabError(f"unknown law {name!r}: this scalinglab fits "
                          f"{', '.join([f.name for f in FAMILIES] + list(FORMS))}")


def fit_from_dict(d: Mapping) -> FitBase:
    """Any fit's ``to_dict()`` back into its result: Approach 3 a FitResult, a whole-curve law a CurveFit,
    every other law a LawFit with its law function."""
    name, approach = d.get("law", "chinchilla"), str(d.get("approach", "3"))
    if name == "chinchilla" and approach == "3":
        return FitResult.from_dict(d)
    fam = family(name)
    if fam.result is CurveFit:
        return CurveFit.from_dict(d)
    return LawFit.from_dict(d, fn=fam.law_fn(approach, d.get("params", {})) if fam.law_fn else None)
