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
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from ..errors import ScalingLabError

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
    if isinstance(params, dict):
        return tuple(float(params[n]) for n in names)
    return tuple(float(v) for v in params)


def _huber(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta))


def objective(theta: np.ndarray, law: str, curves: list[Curve]) -> tuple[float, np.ndarray]:
    """Sum over every measured point of Huber(log measured - log predicted), and its gradient."""
    fn = _WITH_JACOBIAN[law]
    total, grad = 0.0, np.zeros(len(theta))
    for c in curves:
        pred, jac = fn(theta, c, grad=True)
        if not np.all(pred > 0) or not np.all(np.isfinite(jac)):
            return 1e6, np.zeros(len(theta))
        r = np.log(c.loss) - np.log(pred)
        total += _huber(r).sum()
        grad -= (np.clip(r, -HUBER_DELTA, HUBER_DELTA) / pred) @ jac
    return float(total), grad


@dataclass(frozen=True)
class CurveFit:
    """A fitted whole-curve law: its parameters, the fit's objective and diagnostics."""

    law: str
    params: dict
    objective: float
    n_curves: int
    n_points: int
    converged: bool
    warnings: tuple[str, ...] = ()

    def predict(self, curve: Curve) -> np.ndarray:
        return LAWS[self.law][0](self.params, curve)

    def to_dict(self) -> dict:
        return {"format": "scalinglab.curvefit", "law": self.law, "params": dict(self.params),
                "objective": self.objective, "n_curves": self.n_curves, "n_points": self.n_points,
                "converged": self.converged, "warnings": list(self.warnings)}


def _starts(law: str, curves: list[Curve]) -> list[np.ndarray]:
    """Starting points: L0 around the lowest loss; A and alpha from a line through log(L - Lmin + 0.01)
    against log S1 (as Luo et al.'s initialisation); the decay terms on a small grid."""
    lmin = min(c.loss.min() for c in curves)
    x = np.concatenate([np.log(c.area) for c in curves])
    y = np.concatenate([np.log(c.loss - lmin + 0.01) for c in curves])
    slope, intercept = np.polyfit(x, y, 1)
    A0, a0 = math.exp(intercept), max(0.05, -slope)
    L0s = (lmin - 0.2, lmin - 0.05) if lmin > 0.3 else (0.5 * lmin,)
    if law == "lr-annealing":
        return [np.array([L0, A0, a0, C]) for L0 in L0s for C in (1.0, 10.0, 100.0)]
    return [np.array([L0, A0, a0, B, C, 0.5, 0.5]) for L0 in L0s for B, C in ((300.0, 0.5), (1000.0, 2.0))]


def fit_curves(curves: list[Curve], law: str = "multi-power") -> CurveFit:
    """Fit ``law`` to one model size's curves (one or more schedules): L-BFGS-B with the exact gradient
    from a few starts, L0 as it is and every other parameter through its logarithm (B is ~1e2-1e3 where
    alpha is ~0.5: on the raw scale B never moved from its start). Warns (and is not converged) where the
    data cannot identify a term: the decay terms need a curve whose learning rate falls after warm-up."""
    if law not in LAWS:
        raise ScalingLabError(f"unknown whole-curve law {law!r}: choose one of {', '.join(LAWS)}")
    names = LAWS[law][1]

    def natural(z):
        return np.concatenate([z[:1], np.exp(z[1:])])

    def f(z):
        value, grad = objective(natural(z), law, curves)
        return value, np.concatenate([grad[:1], grad[1:] * np.exp(z[1:])])
    # L0 >= 0; exponents kept in a physical range (lr^(-gamma) overflows past gamma ~ 30; a beta of 1e4
    # with C ~ 1e-7 is G(x) ~ 1 - exp(-C beta x), where only the product is identified)
    bounds = [(0.0, None)] + [(-25.0, 25.0)] * (len(names) - 1)
    if law == "multi-power":
        bounds[names.index("gamma")] = (math.log(1e-3), math.log(5.0))
        bounds[names.index("beta")] = (math.log(1e-3), math.log(20.0))
    best = None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for theta0 in _starts(law, curves):
            z0 = np.concatenate([theta0[:1], np.log(theta0[1:])])
            res = minimize(f, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10})
            if best is None or res.fun < best.fun:
                best = res
    edges = [names[i] for i, (z, (lo, hi)) in enumerate(zip(best.x, bounds))
             if (lo is not None and z - lo < 1e-3) or (hi is not None and hi - z < 1e-3)]
    best.x = natural(best.x)
    warnings = []
    if not any(_decays_after_warmup(c) for c in curves):
        warnings.append("no curve's learning rate falls after its warm-up: the loss-drop term (B, C, beta, "
                        "gamma; C for lr-annealing) is not identified by these data; its values mean nothing")
    for name in edges:  # a parameter run to the edge of its range: another term absorbed it
        warnings.append(f"{name} ran to the edge of its range ({best.x[names.index(name)]:.3g}): the fit is "
                        "degenerate (one term stands in for another); do not extrapolate with it")
    params = dict(zip(names, map(float, best.x)))
    converged = bool(best.success) and not warnings
    return CurveFit(law=law, params=params, objective=float(best.fun), n_curves=len(curves),
                    n_points=int(sum(len(c.steps) for c in curves)), converged=converged,
                    warnings=tuple(warnings))


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
