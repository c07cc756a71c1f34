"""The robust statistics every fitter shares: one Huber loss, one robust residual sd, one percentile
interval, one normal quantile. Approach 3's solver, the declared-law fitter (core/lawfit.py) and the
whole-curve laws (curvelaws/) all take these from here, so a fix lands in all three."""
from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): the median absolute deviation of a normal sample, in sds


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber's rho: r^2/2 inside |r| <= delta, linear outside (c (r - c/2) with c = r clipped to delta)."""
    c = np.clip(r, -delta, delta)
    return c * (r - 0.5 * c)


def residual_sd(residuals: np.ndarray, n_params: int) -> float:
    """Robust sd of residuals (1.4826 x median absolute deviation), scaled by sqrt(n / (n - p)) for the p
    parameters fitted: the run-to-run scatter about a law when no seed repeats measure it. Non-finite
    residuals are left out; none left: NaN."""
    r = np.asarray(residuals, dtype=float)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return float("nan")
    mad = MAD_TO_SD * float(np.median(np.abs(r - np.median(r))))
    return mad * math.sqrt(len(r) / max(len(r) - n_params, 1))


def percentile_interval(values, level: float, axis=0):
    """The central ``level`` percentile interval of ``values`` along ``axis`` (NaN draws ignored): (lo, hi),
    arrays when values has more than one axis."""
    tail = 100 * (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every draw NaN: the interval is NaN, said there
        lo, hi = np.nanpercentile(values, [tail, 100 - tail], axis=axis)
    return lo, hi


def percentile_intervals(draws: Sequence[Mapping[str, float]], level: float
                         ) -> dict[str, tuple[float, float]]:
    """{parameter: (lo, hi)} from draws given as one {parameter: value} per resample."""
    if not draws:
        return {}
    return {k: tuple(float(x) for x in percentile_interval([d[k] for d in draws], level)) for k in draws[0]}


def z(level: float) -> float:
    """The two-sided normal quantile of ``level`` (1.96 at 95%)."""
    if level == 0.95:
        return Z95
    from scipy.stats import norm
    return float(norm.ppf(0.5 + level / 2))
