"""Fitting a whole-curve law to runs' curves: starts, bounds, L-BFGS-B on the Huber objective of the
log-loss (core/robust.py), the edge and flat-profile verdicts, and the segment bootstrap."""
from __future__ import annotations

import math
import time
from typing import Mapping

import numpy as np
from scipy.optimize import minimize

from ...errors import ScalingLabError
from ..core.robust import huber, percentile_interval, residual_sd
from ..core.threads import one_blas_thread
from .curve import _WITH_JACOBIAN, HUBER_DELTA, LAWS, Curve, _decays_after_warmup
from .result import CurveFit

N_BLOCKS = 8  # contiguous segments of each curve the bootstrap resamples (neighbouring points correlate)


def objective(theta: np.ndarray, law: str, curves: list[Curve], weights=None) -> tuple[float, np.ndarray]:
    """Sum over every measured point of Huber(log measured - log predicted) (times its weight: a bootstrap
    sample's count of the point), and its gradient."""
    fn = _WITH_JACOBIAN[law]
    total, grad = 0.0, np.zeros(len(theta))
    for i, c in enumerate(curves):
        pred, jac = fn(theta, c, grad=True)
        if not np.all(pred > 0) or not np.all(np.isfinite(jac)):
            return 1e6, np.zeros(len(theta))
        r = np.log(c.loss) - np.log(pred)
        w = 1.0 if weights is None else weights[i]
        total += (w * huber(r, HUBER_DELTA)).sum()
        grad -= (w * np.clip(r, -HUBER_DELTA, HUBER_DELTA) / pred) @ jac
    return float(total), grad


def _starts(law: str, curves: list[Curve]) -> list[np.ndarray]:
    """Starting points: L0 across [0, the lowest loss) (on short curves the loss is nearly as flat in L0 as
    in A and alpha: one L0 start lands in whichever basin is nearest); for each, A and alpha from a line
    through log(L - L0) against log S1 (as Luo et al.'s initialisation); the decay terms on a small grid."""
    lmin = min(c.loss.min() for c in curves)
    x = np.concatenate([np.log(c.area) for c in curves])
    out = []
    for frac in (0.0, 0.5, 0.8, 0.95):
        L0 = frac * lmin
        y = np.concatenate([np.log(c.loss - L0 + 0.01 * lmin) for c in curves])
        slope, intercept = np.polyfit(x, y, 1)
        A0, a0 = math.exp(intercept), max(0.05, -slope)
        if law == "lr-annealing":
            out += [np.array([L0, A0, a0, C]) for C in (1.0, 10.0, 100.0)]
        else:
            out += [np.array([L0, A0, a0, B, C, 0.5, 0.5]) for B, C in ((300.0, 0.5), (50.0, 0.01))]
    return out


def _bounds(law: str) -> list[tuple]:
    """L0 >= 0; every other parameter through its log; exponents kept in a physical range (lr^(-gamma)
    overflows past gamma ~ 30; a beta of 1e4 with C ~ 1e-7 is G(x) ~ 1 - exp(-C beta x), where only the
    product is identified)."""
    names = LAWS[law][1]
    bounds = [(0.0, None)] + [(-25.0, 25.0)] * (len(names) - 1)
    if law == "multi-power":
        bounds[names.index("gamma")] = (math.log(1e-3), math.log(5.0))
        bounds[names.index("beta")] = (math.log(1e-3), math.log(20.0))
    return bounds


def _minimise(law: str, curves: list[Curve], z0: np.ndarray, weights=None, maxiter: int = 5000,
              free: np.ndarray | None = None):
    """L-BFGS-B from z0 (L0 as it is, every other parameter through its log) over the parameters
    ``free`` marks (all by default; the others stay at z0's values). The result's x is the full vector."""
    free = np.ones(len(z0), bool) if free is None else free
    z0 = np.asarray(z0, dtype=float)

    def full(z):
        out = z0.copy()
        out[free] = z
        return out

    def f(z):
        zz = full(z)
        value, grad = objective(np.concatenate([zz[:1], np.exp(zz[1:])]), law, curves, weights)
        return value, np.concatenate([grad[:1], grad[1:] * np.exp(zz[1:])])[free]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = minimize(f, z0[free], jac=True, method="L-BFGS-B",
                       bounds=[b for b, keep in zip(_bounds(law), free) if keep],
                       options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-10})
    res.x = full(res.x)
    return res


FLAT_RTOL = 0.01  # a parameter at its edge whose profile a decade inside costs < 1% of the objective is flat


def _flat_at_edge(law: str, curves, best, i: int, free: np.ndarray, bounds) -> float | None:
    """The relative rise of the objective when parameter ``i`` (at an edge of its range, fitted in log) is
    held a decade inside and the others refitted; None where that rise is not small (the data pull it to
    the edge) or the parameter is L0 (its edge, 0, changes every extrapolation)."""
    if i == 0:
        return None
    lo, hi = bounds[i]
    z = best.x.copy()
    z[i] = (lo + math.log(10.0)) if lo is not None and z[i] - lo < 1e-3 else hi - math.log(10.0)
    held = free.copy()
    held[i] = False
    r = _minimise(law, curves, z, maxiter=2000, free=held)
    rise = (r.fun - best.fun) / max(abs(best.fun), 1e-300)
    return float(max(rise, 0.0)) if rise <= FLAT_RTOL else None


def _at_minimum(law: str, curves, best, free: np.ndarray) -> bool:
    """L-BFGS-B ends 'abnormally' in its line search at a minimum it cannot improve (an exact fit, a
    flat valley): restarted from there, a minimum gains nothing (1e-9 relative)."""
    again = _minimise(law, curves, best.x, maxiter=2000, free=free)
    return bool(again.fun >= best.fun - 1e-9 * max(abs(best.fun), 1e-300))


def _to_z(theta: np.ndarray) -> np.ndarray:
    return np.concatenate([theta[:1], np.log(theta[1:])])


def _to_theta(z: np.ndarray) -> np.ndarray:
    return np.concatenate([z[:1], np.exp(z[1:])])


def fit_curves(curves: list[Curve], law: str = "multi-power", *, name: str = "all", bootstrap: int = 0,
               seed: int = 0, level: float = 0.95, fixed: Mapping[str, float] | None = None,
               start: Mapping[str, float] | None = None) -> CurveFit:
    """Fit ``law`` to one model size's curves (one or more schedules): L-BFGS-B with the exact gradient
    from several starts (each run 300 iterations, the best two to the end), L0 as it is and every other
    parameter through its logarithm (B is ~1e2-1e3 where alpha is ~0.5: on the raw scale B never moved
    from its start). ``fixed`` holds some parameters at given values (another fit's); ``start`` replaces
    the starts by one (a fit of nearly the same data: a leave-one-out refit).

    ``bootstrap`` K: intervals from K refits on resampled segments (each curve cut into N_BLOCKS
    contiguous segments, drawn with replacement: neighbouring points share their noise). Warns (and is
    not converged) where the data cannot identify a term: the decay terms need a curve whose learning
    rate falls after warm-up; a parameter at the edge of its range means one term stands in for another."""
    if law not in LAWS:
        raise ScalingLabError(f"unknown whole-curve law {law!r}: choose one of {', '.join(LAWS)}")
    # one BLAS thread: L-BFGS-B's tiny vector operations ran ~3x slower with OpenBLAS's threads woken for
    # each (scipy 1.17, 2 cores: a debug study's curve fits 42 s -> 6 s)
    return _fit_curves(curves, law, name=name, bootstrap=bootstrap, seed=seed, level=level, fixed=fixed,
                           start=start)


@one_blas_thread
def _fit_curves(curves, law, *, name, bootstrap, seed, level, fixed, start) -> CurveFit:
    if bootstrap and bootstrap < 2:
        raise ScalingLabError(f"bootstrap needs at least 2 resamples, got {bootstrap}", params=("bootstrap",))
    names = LAWS[law][1]
    fixed = dict(fixed or {})
    free = np.array([n not in fixed for n in names])
    t0 = time.perf_counter()
    guesses = [np.array([start[n] for n in names])] if start is not None else _starts(law, curves)
    starts = [_to_z(np.array([fixed.get(n, v) for n, v in zip(names, th)])) for th in guesses]
    screened = sorted((_minimise(law, curves, z, maxiter=300, free=free) for z in starts),
                      key=lambda r: r.fun)
    for i, r in enumerate(screened[:2]):  # the best two not yet converged run on to the end
        if not r.success:
            more = _minimise(law, curves, r.x, free=free)
            screened[i] = more if more.fun <= r.fun else r
    best = min(screened, key=lambda r: r.fun)
    bounds = _bounds(law)
    edges = [names[i] for i, (z, (lo, hi)) in enumerate(zip(best.x, bounds)) if free[i] and
             ((lo is not None and z - lo < 1e-3) or (hi is not None and hi - z < 1e-3))]
    theta = _to_theta(best.x)
    flags = []
    decay_free = [n for n in names[3:] if n not in fixed]
    if decay_free and not any(_decays_after_warmup(c) for c in curves):
        flags.append("no curve's learning rate falls after its warm-up: the loss-drop term (B, C, beta, "
                        "gamma; C for lr-annealing) is not identified by these data; its values mean nothing")
    if not any(_falls(c) for c in curves):  # issue 30 R15: converged on a flat or rising "learning curve"
        flags.append("the loss does not fall along any curve (its last tenth is not below its first): a "
                     "constant or rising loss is no learning curve, and no law of the LR area describes it")
    n_points, n_free = sum(len(c.steps) for c in curves), int(free.sum())
    if n_points < n_free + 2:  # an exact fit through the points: nothing checks it
        flags.append(f"{n_points} point(s) for {n_free} free parameters: at least {n_free + 2} are needed "
                     "for the fit to be tested by its own data; its values mean nothing")
    notes = []
    for p in edges:
        flat = _flat_at_edge(law, curves, best, names.index(p), free, bounds)
        if flat is not None:  # the data do not pin it; the law they describe is the same
            notes.append(f"{p} ran to the edge of its range ({theta[names.index(p)]:.3g}) where the fit "
                         f"does not depend on it (a decade inside, the objective rises {100 * flat:.2g}%): "
                         f"{p} is not identified by these data (a limit of the law's form fits them); "
                         f"predictions hold, the value of {p} means nothing")
        else:
            flags.append(f"{p} ran to the edge of its range ({theta[names.index(p)]:.3g}) and the data pull "
                         "it there: the fit is degenerate (one term stands in for another); do not "
                         "extrapolate with it")
    if not best.success and not flags and not _at_minimum(law, curves, best, free):
        flags.append(f"the optimiser stopped before a minimum ({best.message}): restarted from there, "
                     "it still lowers the objective")
    params = dict(zip(names, map(float, theta)))
    fitted = time.perf_counter() - t0
    draws, ci, diag = None, {}, {}
    if bootstrap:
        rng = np.random.default_rng(seed)
        rows = []
        for _ in range(bootstrap):
            weights = [_segment_weights(len(c.steps), rng) for c in curves]
            r = _minimise(law, curves, best.x, weights=weights, maxiter=1000, free=free)
            if np.all(np.isfinite(r.x)):
                rows.append(_to_theta(r.x))
        draws = np.array(rows).reshape(-1, len(names))
        ci = {p: tuple(float(v) for v in percentile_interval(draws[:, i], level)) for i, p in enumerate(names)
              if free[i]}
        diag["bootstrap_refits"] = len(rows)
    residuals = np.concatenate([np.log(LAWS[law][0](params, c) / c.loss) for c in curves])
    diag |= {"warnings": flags, "not_identified": notes, "fit_seconds": fitted,
             "seconds": time.perf_counter() - t0,
             "residual_sd": residual_sd(residuals, int(free.sum())),
             "mean_abs_error": {c.name: float(np.abs(LAWS[law][0](params, c) / c.loss - 1).mean())
                                for c in curves}}
    settings = {"curves": [c.name for c in curves], "seed": seed, "fixed": sorted(fixed),
                "area": [float(min(c.area.min() for c in curves)), float(max(c.area.max() for c in curves))],
                "steps": [int(min(c.steps.min() for c in curves)), int(max(c.steps.max() for c in curves))],
                "huber_delta": HUBER_DELTA, "segments": N_BLOCKS}
    return CurveFit(law=law, approach=name, params=params, objective=float(best.fun), n_runs=len(curves),
                    n_points=int(sum(len(c.steps) for c in curves)),
                    converged=not flags, ci=ci, diagnostics=diag,
                    settings=settings, draws=draws, level=level)


def _falls(c: Curve) -> bool:
    """The mean loss of the last tenth of a curve's points is below the first tenth's by more than 0.1%."""
    k = max(1, len(c.loss) // 10)
    return bool(np.mean(c.loss[-k:]) < 0.999 * np.mean(c.loss[:k]))


def _segment_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each of n points is drawn when N_BLOCKS contiguous segments are resampled."""
    edges = np.linspace(0, n, min(N_BLOCKS, n) + 1).astype(int)
    counts = np.bincount(rng.integers(0, len(edges) - 1, len(edges) - 1), minlength=len(edges) - 1)
    return np.repeat(counts, np.diff(edges)).astype(float)

