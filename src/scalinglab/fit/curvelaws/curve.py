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
    S2(s) = sum_{i<=s} m_i,   m_i = lam * m_{i-1} + (lr_{i-1} - lr_i)   (after the warm-up's peak; 0 before)

with the paper's momentum ``lam`` = 0.999.

LD is a double sum (every decrement k, seen from every measured step t). Here the decrements are merged
into blocks of at most ``BLOCK`` steps that never straddle a measured step, each evaluated at its
decrement-weighted centre: on the published 25M curves (up to 72k steps) this moves no prediction by more
than ~1e-5 relative against the exact sum, and a fit takes ~1/100 of the time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ...errors import ScalingLabError

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
        if not lr[:steps.min() + 1].sum() > 0:  # S1 = 0 at a measured step: the laws are S1^-alpha
            raise ScalingLabError(f"curve {self.name}: the learning rate is 0 up to its first measured step "
                                  f"({int(steps.min())}): the whole-curve laws need the LR schedule the run "
                                  "trained with (the table's lr column)")

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
        drop[:int(np.argmax(self.lr)) + 1] = 0.0  # the warm-up's rises are not annealing (Tissue et al.
        # leave warm-up out of the annealing area; counted, they made S2 negative through the warm-up)
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


FORMS = {"multi-power": "L0 + A*S1^-alpha - B*sum_k (lr_{k-1} - lr_k)*(1 - (C*lr_k^-gamma*S_k + 1)^-beta)",
         "lr-annealing": "L0 + A*S1^-alpha - C*S2"}


LABELS = {"multi-power": "Multi-Power Law", "lr-annealing": "LR-annealing law"}


def _decays_after_warmup(c: Curve) -> bool:
    peak = int(np.argmax(c.lr))
    return bool(c.lr[peak:c.steps.max() + 1].min() < 0.95 * c.lr[peak])
