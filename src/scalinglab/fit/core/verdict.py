"""The convergence verdict every fit shares: a stopped optimiser is not enough, the law must be usable.

A fit is degenerate (``converged: false``) when what it found is not a law the data support:
an irreducible term that vanished (E -> 0), an exponent at 0, negative or implausibly large (> 5: a step
or a flat line, not a power law), a scale constant at the float limit, a bootstrap interval of zero width
(every resample lands on the same boundary value) or an unbounded one, or a fixed E at or above the
lowest measured loss. Each finding is one warning that names the parameter, its value and why.

The verdict must not depend on whether the user asked for intervals: every fitter refits at least
VERDICT_DRAWS resamples (seeded; the first VERDICT_DRAWS of a larger bootstrap are the same resamples) and
judges their 95% intervals, whatever ``--bootstrap`` says; the intervals it reports are the user's.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

from .robust import percentile_interval

EXPONENT_MIN = 0.01  # below this the law falls < 2.3% per decade: a constant over any range of data
EXPONENT_MAX = 5.0  # above this it is a step (Kaplan's largest is 0.76, Chinchilla's 0.34)
SCALE_LOG10_LIMIT = 200.0  # |log10 scale| beyond this: the constant ran off towards the float limit
SCALE_SPAN_LIMIT = 1e10  # a scale constant whose interval spans more than 10 decades is unconstrained
E_FLOOR = 1e-3  # E below this fraction of the lowest measured target has vanished
VERDICT_DRAWS = 100  # resamples every verdict reads, asked for or not (100 refits of Approach 3: ~0.07 s)
VERDICT_LEVEL = 0.95


VERDICT_MAX_UNITS = 5000  # above this many resampled units (runs), the verdict refits none of its own
VERDICT_MAX_POINTS = 2000  # ... nor above this many points (curve evals): 100 refits of 2000 take 1-16 s


def resamples(asked: int | None, units: int, points: int = 0) -> int:
    """How many resamples a fitter refits: the user's count, and never fewer than the verdict reads, on a
    table of at most VERDICT_MAX_UNITS runs and VERDICT_MAX_POINTS points. A larger table gets only what
    was asked: 100 refits of a million rows would cost minutes and gigabytes, and its intervals are narrow;
    its verdict then reads the point estimates (and the asked-for intervals), which ``verdict_note``
    says."""
    if units > VERDICT_MAX_UNITS or points > VERDICT_MAX_POINTS:
        return int(asked or 0)
    return max(int(asked or 0), VERDICT_DRAWS)


def verdict_note(asked: int | None, units: int, points: int = 0) -> list[str]:
    """The diagnostics' note for a verdict that read no resamples of its own (see ``resamples``)."""
    if asked:
        return []
    if units > VERDICT_MAX_UNITS:
        return [f"the verdict read no bootstrap intervals: {units:,} runs (more than {VERDICT_MAX_UNITS:,}) "
                "are not resampled unless asked (--bootstrap K); the point estimates were judged"]
    if points > VERDICT_MAX_POINTS:
        return [f"the verdict read no bootstrap intervals: {points:,} points (more than "
                f"{VERDICT_MAX_POINTS:,}) are not resampled unless asked (--bootstrap K); the point "
                "estimates were judged"]
    return []


def verdict_intervals(draws: np.ndarray | None, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The 95% percentile intervals of the first VERDICT_DRAWS resamples (rows of ``draws``, columns in the
    order of ``names``): what the verdict judges, the same whether the user asked for 0 or 4000 resamples."""
    if draws is None or len(draws) < 2:
        return {}
    lo, hi = percentile_interval(np.asarray(draws, dtype=float)[:VERDICT_DRAWS], VERDICT_LEVEL)
    return {name: (float(lo[i]), float(hi[i])) for i, name in enumerate(names)}


def judge(params: Mapping[str, float], ci: Mapping[str, tuple[float, float]] | None = None, *,
          exponents: Iterable[str] = (), scales: Iterable[str] = (), irreducible: str | None = None,
          target_min: float | None = None, fixed: Mapping[str, float] | None = None,
          exponent_range: tuple[float, float] = (EXPONENT_MIN, EXPONENT_MAX)) -> list[str]:
    """Warnings that make a fit degenerate; an empty list means the law is usable.

    ``exponents`` must lie in ``exponent_range``; ``scales`` must be finite and within the float range;
    ``irreducible`` (E) must not vanish against ``target_min`` (the lowest measured loss); ``fixed`` holds
    parameters the user pinned (a fixed E at or above ``target_min`` leaves no room for the reducible terms);
    ``ci`` intervals of free parameters must be bounded and of non-zero width.
    """
    fixed = dict(fixed or {})
    out = [w for name in exponents if name in params and name not in fixed
           for w in _exponent(name, params[name], exponent_range)]
    out += [f"{name} = {_plain(params[name])} ran off to the float limit: the runs do not pin this constant "
            "down" for name in scales if name in params and name not in fixed and name != irreducible
            and not _finite_scale(params[name])]
    if irreducible and irreducible in params and irreducible not in fixed and target_min:
        v = params[irreducible]
        if not v >= E_FLOOR * target_min:
            out.append(f"the irreducible term {irreducible} = {_plain(v)} vanished (below {E_FLOOR:g} x the "
                       f"lowest loss {target_min:.4g}): the runs do not constrain it")
    for name, v in fixed.items():
        if name == irreducible and target_min is not None and v >= target_min:
            out.append(f"fixed {name} = {_plain(v)} is at or above the lowest measured loss "
                       f"{target_min:.4g}: the law cannot reach the data")
    scale_names = set(scales) - {irreducible}
    out += [w for name, bounds in (ci or {}).items() if name not in fixed and name in params
            for w in _interval(name, bounds, name in scale_names)]
    out += [w for name in exponents if name in (ci or {}) and name in params and name not in fixed
            for w in _exponent_interval(name, params[name], ci[name], exponent_range)]
    return out


def _exponent_interval(name: str, v: float, bounds: tuple[float, float],
                       exponent_range: tuple[float, float]) -> list[str]:
    """An exponent whose resamples reach values the law cannot have, or that do not surround it."""
    lo, hi = bounds
    lo_x, hi_x = exponent_range
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo <= 1e-6 * max(abs(lo), abs(hi), 1e-300):
        return []  # unbounded or zero width: said by _interval
    if lo < lo_x or hi > hi_x:
        return [f"the 95% bootstrap interval of exponent {name} [{lo:.3g}, {hi:.3g}] reaches outside "
                f"[{lo_x:g}, {hi_x:g}]: the runs do not constrain it"]
    tol = 1e-9 * (hi - lo)
    if not lo + tol < v < hi - tol:
        return [f"exponent {name} = {_plain(v)} lies at or beyond an edge of its own 95% bootstrap interval "
                f"[{lo:.4g}, {hi:.4g}]: the resamples do not scatter about it (one run or one boundary "
                "decides it)"]
    return []


def _exponent(name: str, v: float, exponent_range: tuple[float, float]) -> list[str]:
    lo_x, hi_x = exponent_range
    if not math.isfinite(v):
        return [f"exponent {name} = {_plain(v)}: not a number"]
    if v <= 0:
        return [f"exponent {name} = {_plain(v)} is not positive: the target does not fall as the law's form "
                "says in these runs"]
    if v < lo_x:
        return [f"exponent {name} = {_plain(v)} ran to 0 (< {lo_x:g}): a constant, not a power law"]
    if v > hi_x:
        return [f"exponent {name} = {_plain(v)} is above {hi_x:g}: a step or a flat line, not a power law"]
    return []


def _finite_scale(v: float) -> bool:
    return math.isfinite(v) and v > 0 and abs(math.log10(v)) <= SCALE_LOG10_LIMIT


def _interval(name: str, bounds: tuple[float, float], is_scale: bool) -> list[str]:
    lo, hi = bounds
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [f"the bootstrap interval of {name} is unbounded: the runs do not constrain it"]
    if is_scale and lo > 0 and hi / lo > SCALE_SPAN_LIMIT:
        return [f"the bootstrap interval of {name} spans {math.log10(hi / lo):.0f} decades "
                f"([{lo:.3g}, {hi:.3g}]): the runs do not constrain it"]
    if hi - lo <= 1e-6 * max(abs(lo), abs(hi), 1e-300):
        return [f"the bootstrap interval of {name} has zero width ([{lo:.4g}, {hi:.4g}]): every resample "
                "lands on the same boundary value"]
    return []


def _plain(v: float) -> str:
    """A number as a person writes it (never np.float64(...))."""
    return f"{float(v):.4g}"
