"""Whole-curve laws: the loss at every step of a run from its learning-rate schedule.

Both laws read a run as its per-step learning rates ``lr[0..T-1]`` (warm-up included) and the losses
measured at some of its steps; both fit the log-loss under a Huber loss (delta 1e-3), as their papers do.

Multi-Power Law, Luo et al. 2025 (arXiv 2503.12811, Eq. 5-6):

    L(t) = L0 + A * S1(t)^(-alpha) - B * LD(t)
    S1(t) = sum_{tau <= t} lr_tau                         (the area under the schedule, warm-up included)
    LD(t) = sum_{k=1..t} (lr_{k-1} - lr_k) * G(lr_k^(-gamma) * S_k(t)),   S_k(t) = sum_{tau=k..t} lr_tau
    G(x)  = 1 - (C x + 1)^(-beta)

LR-annealing law, Tissue et al. 2024 (arXiv 2408.11029, Eq. 1):

    L(s) = L0 + A * S1(s)^(-alpha) - C * S2(s)
    S2(s) = sum_{i<=s} m_i,   m_i = lam * m_{i-1} + (lr_{i-1} - lr_i)

with the paper's momentum ``lam`` = 0.999.

LD is a double sum (every decrement k, seen from every measured step t). Here the decrements are merged
into blocks of at most ``BLOCK`` steps that never straddle a measured step, each evaluated at its
decrement-weighted centre: on the published 25M curves (up to 72k steps) this moves no prediction by more
than ~1e-5 relative against the exact sum, and a fit takes ~1/100 of the time.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from ..errors import ScalingLabError
from .base import FitBase, _z, draws_of

BLOCK = 128  # steps merged into one decrement term (see the module docstring)
HUBER_DELTA = 1e-3  # on log-loss residuals, as in both papers
ANNEALING_MOMENTUM = 0.999  # Tissue et al. 2024, lambda

MULTI_POWER = ("L0", "A", "alpha", "B", "C", "beta", "gamma")
LR_ANNEALING = ("L0", "A", "alpha", "C")


@dataclass(frozen=True)
class Curve:
    """One run: ``lr[t]`` for every step t = 0..T-1, and the loss measured at ``steps`` (each < T)."""

    name: str
    lr: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    _blocks: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        lr, steps, loss = (np.asarray(self.lr, float), np.asarray(self.steps, int),
                           np.asarray(self.loss, float))
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "loss", loss)
        if steps.shape != loss.shape or not len(steps):
            raise ScalingLabError(f"curve {self.name}: steps and losses must be equal-length, non-empty")
        if steps.min() < 1 or steps.max() >= len(lr):
            raise ScalingLabError(f"curve {self.name}: measured steps must lie in 1..{len(lr) - 1}")
        if not (np.all(np.isfinite(lr)) and lr.min() >= 0 and np.all(np.isfinite(loss)) and loss.min() > 0):
            raise ScalingLabError(f"curve {self.name}: learning rates must be finite and >= 0, losses "
                                  "finite and > 0")

    @property
    def cumulative(self) -> np.ndarray:
        """sum of lr[0..t] for every step t (computed once: a fit evaluates the law thousands of times)."""
        if "cum" not in self._blocks:
            self._blocks["cum"] = np.cumsum(self.lr)
        return self._blocks["cum"]

    @property
    def area(self) -> np.ndarray:
        """S1 at each measured step (sum of lr[0..t])."""
        return self.cumulative[self.steps]

    def decrements(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The schedule's changes merged into blocks: (centre step k, summed lr_{k-1} - lr_k, lr at k).
        A block never holds steps on both sides of a measured step."""
        if "d" not in self._blocks:
            drop = np.zeros_like(self.lr)
            drop[1:] = self.lr[:-1] - self.lr[1:]
            k = np.flatnonzero(drop)
            k = k[k >= 1]
            if not len(k):
                self._blocks["d"] = (np.zeros(0, int), np.zeros(0), np.zeros(0))
            else:
                # block id: which measured-step interval, then which BLOCK-sized chunk inside it
                interval = np.searchsorted(self.steps, k, side="left")
                key = interval * (len(self.lr) // BLOCK + 2) + k // BLOCK
                _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
                w = drop[k]
                total = np.bincount(inverse, weights=w)
                absw = np.bincount(inverse, weights=np.abs(w))
                centre = np.bincount(inverse, weights=np.abs(w) * k) / np.where(absw > 0, absw, 1)
                centre = np.clip(np.rint(centre).astype(int), 1, len(self.lr) - 1)
                self._blocks["d"] = (centre, total, np.maximum(self.lr[centre], 1e-12))
        return self._blocks["d"]

    def annealing_area(self, lam: float = ANNEALING_MOMENTUM) -> np.ndarray:
        """S2 of Tissue et al. at each measured step (computed once per momentum)."""
        if ("S2", lam) in self._blocks:
            return self._blocks[("S2", lam)]
        drop = np.zeros_like(self.lr)
        drop[1:] = self.lr[:-1] - self.lr[1:]
        m = np.empty_like(drop)
        acc = 0.0
        for i, d in enumerate(drop):  # a linear recurrence; T <= 1e6 steps in well under a second
            acc = lam * acc + d
            m[i] = acc
        self._blocks[("S2", lam)] = np.cumsum(m)[self.steps]
        return self._blocks[("S2", lam)]


def multi_power(params, curve: Curve) -> np.ndarray:
    """The Multi-Power Law's loss at ``curve.steps``; ``params`` in MULTI_POWER order or a mapping."""
    return _multi_power(_values(params, MULTI_POWER), curve, grad=False)[0]


def _multi_power(theta, curve: Curve, grad: bool):
    """(prediction, its Jacobian over MULTI_POWER or None)."""
    L0, A, alpha, B, C, beta, gamma = theta
    cum = curve.cumulative
    S1 = cum[curve.steps]
    power = S1 ** (-alpha)
    k, drop, lr_k = curve.decrements()
    live = k[None, :] <= curve.steps[:, None]  # a block counts from the steps after it
    x = np.where(live, lr_k[None, :] ** (-gamma) * np.maximum(S1[:, None] - cum[k - 1][None, :], 0.0), 0.0)
    base = C * x + 1.0
    G = 1.0 - base ** (-beta)
    LD = (G * drop[None, :]).sum(axis=1)
    pred = L0 + A * power - B * LD
    if not grad:
        return pred, None
    dG_dC = beta * base ** (-beta - 1.0) * x
    dG_dbeta = base ** (-beta) * np.log(base)
    dG_dgamma = -dG_dC * C * np.log(lr_k)[None, :]  # dx/dgamma = -ln(lr_k) x
    jac = np.stack([np.ones_like(S1), power, -A * power * np.log(S1), -LD,
                    -B * (dG_dC * drop).sum(axis=1), -B * (dG_dbeta * drop).sum(axis=1),
                    -B * (dG_dgamma * drop).sum(axis=1)], axis=1)
    return pred, jac


def lr_annealing(params, curve: Curve, lam: float = ANNEALING_MOMENTUM) -> np.ndarray:
    """The LR-annealing law's loss at ``curve.steps``; ``params`` in LR_ANNEALING order or a mapping."""
    return _lr_annealing(_values(params, LR_ANNEALING), curve, grad=False)[0]


def _lr_annealing(theta, curve: Curve, grad: bool):
    L0, A, alpha, C = theta
    S1, S2 = curve.area, curve.annealing_area()
    power = S1 ** (-alpha)
    pred = L0 + A * power - C * S2
    if not grad:
        return pred, None
    return pred, np.stack([np.ones_like(S1), power, -A * power * np.log(S1), -S2], axis=1)


LAWS = {"multi-power": (multi_power, MULTI_POWER), "lr-annealing": (lr_annealing, LR_ANNEALING)}
_WITH_JACOBIAN = {"multi-power": _multi_power, "lr-annealing": _lr_annealing}


def _values(params, names) -> tuple[float, ...]:
    if isinstance(params, Mapping):
        return tuple(float(params[n]) for n in names)
    return tuple(float(v) for v in params)


def _huber(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta))


FORMS = {"multi-power": "L0 + A*S1^-alpha - B*sum_k (lr_{k-1} - lr_k)*(1 - (C*lr_k^-gamma*S_k + 1)^-beta)",
         "lr-annealing": "L0 + A*S1^-alpha - C*S2"}
LABELS = {"multi-power": "Multi-Power Law", "lr-annealing": "LR-annealing law"}
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
        total += (w * _huber(r)).sum()
        grad -= (w * np.clip(r, -HUBER_DELTA, HUBER_DELTA) / pred) @ jac
    return float(total), grad


@dataclass(frozen=True, kw_only=True)
class CurveFit(FitBase):
    """A whole-curve law fitted to one model size's curves, through the interface every fit has
    (fit/base.py: save, load_fit, summary, to_dict, intervals from bootstrap draws).

    ``approach`` names the model size (``N=1.2e+06``, a size column's value, or ``all``). It answers
    ``predict(schedule, steps)``: the loss at ``steps`` of a run with per-step LRs ``schedule`` (or a
    Curve), and ``predict_interval`` for it; ``settings["area"]`` is the range of S1 (the schedule's area)
    it saw, and a prediction past it extrapolates."""

    law: str
    approach: str
    params: Mapping[str, float]
    objective: float
    n_runs: int
    n_points: int
    converged: bool
    ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    diagnostics: Mapping[str, object] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)
    level: float = 0.95
    inputs = ("schedule", "step")
    target = "loss"

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType({k: float(v) for k, v in self.params.items()}))
        object.__setattr__(self, "ci", MappingProxyType({k: (float(a), float(b)) for k, (a, b) in
                                                         self.ci.items()}))
        object.__setattr__(self, "diagnostics", MappingProxyType(dict(self.diagnostics)))
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))
        if self.draws is not None:
            draws = np.asarray(self.draws, dtype=float).reshape(-1, len(self.params))
            draws.setflags(write=False)
            object.__setattr__(self, "draws", draws)

    @property
    def form(self) -> str:
        return FORMS[self.law]

    @property
    def label(self) -> str:
        return f"{LABELS[self.law]} ({self.approach})"

    @property
    def answers(self) -> tuple[str, ...]:
        return ("curve",)

    def _curve(self, schedule, steps) -> Curve:
        if isinstance(schedule, Curve):
            if steps is None:
                return schedule
            schedule = schedule.lr
        lr = np.asarray(schedule, dtype=float)
        at = np.arange(1, len(lr)) if steps is None else np.asarray(steps, dtype=int)
        return Curve("schedule", lr, at, np.ones(len(at)))

    def predict(self, schedule, steps=None) -> np.ndarray:
        """The loss at ``steps`` (0-based steps of ``schedule``; all of them past step 0 if None) of a run
        whose per-step learning rates are ``schedule`` (an array, or a Curve: its measured steps)."""
        return LAWS[self.law][0](self.params, self._curve(schedule, steps))

    def predict_interval(self, schedule, steps=None, kind: str = "confidence"):
        """Bootstrap percentile interval (lo, hi arrays) of ``predict``; ``kind="prediction"`` adds the
        points' scatter about the law (in log, in quadrature). None without bootstrap draws."""
        if kind not in ("confidence", "prediction"):
            raise ScalingLabError(f"interval kind must be confidence or prediction, not {kind!r}")
        if self.draws is None or not len(self.draws):
            return None
        curve = self._curve(schedule, steps)
        mid = LAWS[self.law][0](self.params, curve)
        tail = 100 * (1 - self.level) / 2
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample whose law fails there is NaN
            values = np.stack([LAWS[self.law][0](row, curve) for row in self.draws])
            values = np.where(values > 0, values, np.nan)
            lo, hi = np.nanpercentile(values, [tail, 100 - tail], axis=0)
            if kind == "prediction":
                z = _z(self.level) * self.noise_sd()[0]
                lo = mid * np.exp(-np.hypot(np.maximum(np.log(mid / lo), 0.0), z))
                hi = mid * np.exp(np.hypot(np.maximum(np.log(hi / mid), 0.0), z))
        return lo, hi

    def optimal(self, C):
        raise ScalingLabError(f"{self.label} predicts a loss curve under a schedule; it does not "
                              "allocate compute")

    def to_dict(self, *, draws: bool = True) -> dict:
        out = {"law": self.law, "approach": self.approach, "key": self.key, "form": self.form,
               "target": "loss", "inputs": list(self.inputs), "params": dict(self.params),
               "objective": self.objective, "n_runs": self.n_runs, "n_points": self.n_points,
               "converged": self.converged}
        return self._common_tail(out, draws, resampled="segments")

    @classmethod
    def from_dict(cls, d: Mapping) -> "CurveFit":
        if d.get("law") not in LAWS:
            raise ScalingLabError(f"unknown whole-curve law {d.get('law')!r}")
        bs = d.get("bootstrap") or {}
        return cls(law=d["law"], approach=str(d["approach"]), params=d["params"],
                   objective=float(d["objective"]), n_runs=int(d["n_runs"]), n_points=int(d["n_points"]),
                   converged=bool(d["converged"]), ci=d.get("ci", {}),
                   diagnostics=dict(d.get("diagnostics", {})) | {"warnings": list(d.get("warnings", ()))},
                   settings=d.get("settings", {}), draws=draws_of(d), level=float(bs.get("level", 0.95)))

    def summary(self) -> str:
        lines = [f"{self.label}: {self.form}",
                 f"  curves: {self.n_runs}   points: {self.n_points}   objective: {self.objective:.6g}   "
                 f"converged: {'yes' if self.converged else 'NO'}"]
        for name, value in self.params.items():
            ci = self.ci.get(name)
            span = f"  [{ci[0]:.4g}, {ci[1]:.4g}] {100 * self.level:g}% CI" if ci else ""
            lines.append(f"  {name:<8}{value:>14.6g}{span}")
        for name, err in self.diagnostics.get("mean_abs_error", {}).items():
            lines.append(f"  curve {name}: mean |error| {100 * err:.3f}%")
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  not identified: {w}" for w in self.not_identified]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


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
    with threadpool_limits(1, user_api="blas"):
        return _fit_curves(curves, law, name=name, bootstrap=bootstrap, seed=seed, level=level, fixed=fixed,
                           start=start)


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
        tail = 100 * (1 - level) / 2
        ci = {p: tuple(np.percentile(draws[:, i], [tail, 100 - tail])) for i, p in enumerate(names)
              if free[i]}
        diag["bootstrap_refits"] = len(rows)
    residuals = np.concatenate([np.log(LAWS[law][0](params, c) / c.loss) for c in curves])
    diag |= {"warnings": flags, "not_identified": notes, "fit_seconds": fitted,
             "seconds": time.perf_counter() - t0,
             "residual_sd": float(1.4826 * np.median(np.abs(residuals - np.median(residuals)))),
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


def estimate_final(curve: Curve, *, law: str = "multi-power", reference: CurveFit | None = None,
                   bootstrap: int = 20, seed: int = 0) -> dict:
    """The final loss of a run that is still training, from its curve so far: ``curve.lr`` is the whole
    schedule (every step to the end), ``curve.steps`` / ``curve.loss`` what has been measured.

    Without ``reference`` the law is fitted to the measured points and evaluated at the last step; early
    in a run that curve cannot tell how much the LR's fall will lower the loss (a WSD run has not decayed
    at all before its cool-down): then a warning says so and the estimate is not converged. With
    ``reference`` (a fit of other runs' whole curves: the same model size's, or the study's) only the
    scale A is fitted here and every other parameter is the reference's: over the 5-30 points of a short
    run's first half, freeing L0 and alpha as well moved estimates by up to 10% (docs/fitting.md). The
    interval is a prediction interval (the segment bootstrap's spread and the points' scatter).
    -> {step, fraction, final, interval, converged, warnings, decay_from}."""
    fixed = {k: v for k, v in reference.params.items() if k != "A"} if reference is not None else None
    fit = fit_curves([curve], law, name=curve.name, bootstrap=bootstrap, seed=seed, fixed=fixed)
    last = np.array([len(curve.lr) - 1])
    final = float(fit.predict(curve.lr, last)[0])
    band = fit.predict_interval(curve.lr, last, kind="prediction") if bootstrap else None
    if band is not None and not (np.isfinite(band[0][0]) and np.isfinite(band[1][0])):
        band = None  # resamples whose law could not be evaluated there: no interval rather than a half one
    step = int(curve.steps.max()) + 1
    flags = list(fit.warnings)
    if reference is not None and not reference.converged:
        flags.append(f"the reference fit ({reference.key}) did not converge")
    return {"step": step, "fraction": step / len(curve.lr), "final": final,
            "interval": [float(band[0][0]), float(band[1][0])] if band else None,
            "converged": fit.converged and (reference is None or reference.converged), "warnings": flags,
            "decay_from": reference.key if reference is not None else "own curve"}


def leave_one_out_estimates(runs: Mapping[str, tuple[float, Curve]], fractions=(0.3, 0.5), *,
                            law: str = "multi-power", min_points: int = 3) -> list[dict]:
    """For each run of a study ({run_id: (N, its whole curve)}): its final loss estimated from its first
    ``fractions`` with the law fitted to the study's other runs (those of its size when that fit
    converges, else all the others), against the last measured point. -> rows run_id, N, fraction, step,
    final, measured, error, reference, converged."""
    rows, whole = [], {}  # whole: the fit of all runs (of a size, or of the study), the refits' start

    def without(rid, key, curves):
        if key not in whole:
            whole[key] = fit_curves(curves + [runs[rid][1]], law)
        return fit_curves(curves, law, name=f"{key} without {rid}", start=whole[key].params)
    for rid, (n, curve) in runs.items():
        same = [c for k, (m, c) in runs.items() if k != rid and m == n]
        ref = without(rid, f"N={n:.4g}", same) if same else None
        if ref is None:
            others = [c for k, (_, c) in runs.items() if k != rid]
            if not others:
                continue
            ref = without(rid, "all", others)
        for frac in fractions:
            keep = curve.steps + 1 <= frac * len(curve.lr)
            if keep.sum() < min_points:
                continue
            e = estimate_final(Curve(curve.name, curve.lr, curve.steps[keep], curve.loss[keep]), law=law,
                               reference=ref, bootstrap=0)
            rows.append({"run_id": rid, "N": n, "fraction": frac, "step": e["step"], "final": e["final"],
                         "measured": float(curve.loss[-1]), "error": e["final"] / float(curve.loss[-1]) - 1,
                         "reference": ref.approach, "converged": e["converged"]})
    return rows


def _segment_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each of n points is drawn when N_BLOCKS contiguous segments are resampled."""
    edges = np.linspace(0, n, min(N_BLOCKS, n) + 1).astype(int)
    counts = np.bincount(rng.integers(0, len(edges) - 1, len(edges) - 1), minlength=len(edges) - 1)
    return np.repeat(counts, np.diff(edges)).astype(float)


def _decays_after_warmup(c: Curve) -> bool:
    peak = int(np.argmax(c.lr))
    return bool(c.lr[peak:c.steps.max() + 1].min() < 0.95 * c.lr[peak])


def relative_errors(fit: CurveFit, curve: Curve) -> np.ndarray:
    """(predicted - measured) / measured at each measured step."""
    return fit.predict(curve) / curve.loss - 1.0


def curves_from_table(table, *, group: str | None = None) -> tuple[dict[str, list[Curve]], list[str]]:
    """Curves from a table with columns run, step, lr, loss (one row per measured step; ``group`` names a
    column of model sizes, one fit per value). A run's per-step LR is its rows' LR interpolated linearly
    between their steps; before its first row, a linear warm-up from 0 is assumed (what a run logged
    from the end of its warm-up had). -> ({group value: curves}, notes on what was assumed)."""
    import pandas as pd
    need = [c for c in ("run", "step", "lr", "loss") if c not in table.columns]
    if need:
        raise ScalingLabError(f"a curve table needs columns run, step, lr, loss; missing {', '.join(need)}")
    if group is not None and group not in table.columns:
        raise ScalingLabError(f"no column {group!r} to group the curves by")
    table = table.copy()
    for col in ("step", "lr", "loss"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    bad = table[["step", "lr", "loss"]].isna().any(axis=1) | (table["loss"] <= 0) | (table["lr"] < 0)
    if bad.any():
        raise ScalingLabError(f"{int(bad.sum())} row(s) of the curve table have a missing, non-numeric or "
                              "impossible step, lr or loss (loss must be > 0, lr >= 0)")
    out, notes = {}, []
    for key, frame in table.groupby(group if group else (lambda _: "all"), sort=True):
        curves = []
        for run, g in frame.groupby("run", sort=True):
            g = g.sort_values("step").drop_duplicates("step", keep="last")
            steps = g["step"].to_numpy(dtype=int)
            if len(steps) < 3:
                raise ScalingLabError(f"run {run!r} has {len(steps)} row(s); a curve needs at least 3")
            lr = np.interp(np.arange(steps.max() + 1), np.concatenate([[0], steps]),
                           np.concatenate([[0.0], g["lr"].to_numpy(float)]))
            if steps.min() > 1:
                notes.append(f"run {run}: no rows before step {steps.min()}; a linear warm-up from 0 assumed")
            keep = steps >= 1
            curves.append(Curve(str(run), lr, steps[keep], g["loss"].to_numpy(float)[keep]))
        out[str(key)] = curves
    return out, notes


def estimate_summary(rows: list[dict]) -> dict:
    """Per fraction of a run: how far the estimates of its final loss were (median and max |error|)."""
    out = {}
    for frac in sorted({r["fraction"] for r in rows}):
        errors = np.abs([r["error"] for r in rows if r["fraction"] == frac])
        out[f"{frac:g}"] = {"n": int(len(errors)), "median_abs_error": float(np.median(errors)),
                            "max_abs_error": float(errors.max()),
                            "n_converged": int(sum(r["converged"] for r in rows if r["fraction"] == frac))}
    return out


STUDY_POINTS = 64  # points per run a study's fits use (of up to 256 kept): a fit's cost grows as points^2


def curves_of_runs(rows, max_points: int | None = STUDY_POINTS) -> dict[str, tuple[float, Curve]]:
    """A study's stored curves (SQLiteStore.training_curves) as {run_id: (N, Curve)}: each run's points
    past its warm-up against the LR of every step recomputed from its spec (exact, not interpolated); the
    loss is the fixed validation probe where the run recorded one, else the training windows' mean. A WSD
    branch's curve holds its trunk's points up to the cool-down it branched at. ``max_points``: every
    k-th point, ending with the last (neighbouring points of the probe differ by its noise alone; the
    default study's 19 runs fitted and estimated in ~170 s with all points)."""
    import json

    from ..plan import schedules
    from ..plan.spec import RunSpec
    out = {}
    for run_id, g in rows.groupby("run_id", sort=True):
        spec = RunSpec.from_dict(json.loads(g["spec"].iloc[0]))
        lr = schedules.of_run(spec, float(g["peak_lr"].iloc[0]))
        # a point at step s closes the window ending at 0-based step s - 1
        g = g[g["step"] > schedules.warmup_of(spec) + 1]
        if max_points and len(g) > max_points:
            g = g.iloc[::-1].iloc[::-(-len(g) // max_points)].iloc[::-1]
        loss = g["probe"] if g["probe"].notna().all() else g["loss"]
        if len(g) >= 3:
            out[str(run_id)] = (float(g["N"].iloc[0]), Curve(str(run_id), lr, g["step"].to_numpy(int) - 1,
                                                             loss.to_numpy(float)))
    return out
