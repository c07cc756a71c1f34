"""The Approach-3 optimiser: batched Levenberg-Marquardt over every start at once, then an L-BFGS-B polish.

Why batched: the protocol of Hoffmann 2022 §D.2 starts L-BFGS from 4500 grid points; run one by one in
scipy that takes ~50 s. Here all starts advance together (one BLAS product per Hessian block per step),
the worst are pruned between rounds, and only the few best are polished one by one.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import product

import numpy as np
from scipy.optimize import minimize

from .objectives import (
    FreeMask,
    RobustLoss,
    exact_hessian_single,
    objective,
    objective_and_grad_single,
    objective_grad_hess,
)

# Hoffmann 2022 §D.2 initialisation grid (DESIGN.md §4): 5 x 5 x 5 x 6 x 6 = 4500 starts.
GRID_ALPHA = GRID_BETA = tuple(np.arange(0.0, 2.01, 0.5))
GRID_E = tuple(np.arange(-1.0, 1.01, 0.5))
GRID_A = GRID_B = tuple(np.arange(0.0, 25.01, 5.0))


def default_grid() -> np.ndarray:
    """The 4500 starts in THETA order (a, alpha, b, beta, e)."""
    return np.array(list(product(GRID_A, GRID_ALPHA, GRID_B, GRID_BETA, GRID_E)), dtype=float)


# Largest change of any LSE parameter in one step. Where a term's softmax weight is ~0 (say E far below
# every loss) its column of the Hessian vanishes and an undamped step would send it to -1e4 at once.
MAX_STEP = 4.0


@dataclass(frozen=True)
class RunData:
    """Per-run inputs of the objective: x = log N, y = log D, logL = log loss, w = weights."""

    x: np.ndarray
    y: np.ndarray
    logL: np.ndarray
    w: np.ndarray


def lm_steps(theta: np.ndarray, data: RunData, loss: RobustLoss, free: FreeMask, *, iters: int,
             w: np.ndarray | None = None, lam: np.ndarray | None = None, state=None):
    """Advance S parameter vectors by ``iters`` Levenberg-Marquardt steps on the IRLS Hessian.

    Each start keeps its own damping: a step that lowers its objective is taken and the damping shrinks;
    one that does not is refused and the damping grows. Returns (theta, f, g, lam, state).
    """
    w = data.w if w is None else w
    S = theta.shape[0]
    theta = theta.copy()
    theta[:, ~free.mask] = free.fixed_values[~free.mask]
    lam = np.full(S, 1e-2) if lam is None else lam.copy()
    f, g, H = objective_grad_hess(theta, data.x, data.y, data.logL, w, loss) if state is None else state
    fixed = ~free.mask
    eye = np.eye(5)
    for _ in range(iters):
        Hs = H.copy()
        Hs[:, fixed, :] = 0.0
        Hs[:, :, fixed] = 0.0
        diag = np.einsum("sii->si", Hs)
        damp = lam[:, None] * (diag + 1e-12 * (1.0 + diag.max(axis=1, keepdims=True)))
        Hs += damp[:, :, None] * eye
        Hs[:, fixed, fixed] = 1.0
        gs = g.copy()
        gs[:, fixed] = 0.0
        try:
            step = -np.linalg.solve(Hs, gs[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # a singular system in the batch: fall back to pseudo-inverse
            step = -np.einsum("sij,sj->si", np.linalg.pinv(Hs), gs)
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-300))  # a flat direction must not fling
        trial = theta + step
        f2, g2, H2 = objective_grad_hess(trial, data.x, data.y, data.logL, w, loss)
        ok = np.isfinite(f2) & (f2 < f)
        theta[ok], f[ok], g[ok], H[ok] = trial[ok], f2[ok], g2[ok], H2[ok]
        lam = np.where(ok, np.maximum(lam / 3.0, 1e-9), np.minimum(lam * 4.0, 1e9))
    return theta, f, g, lam, (f, g, H)


def term_signature(theta: np.ndarray, data: RunData, floor: float = 7.0) -> np.ndarray:
    """Which of the three LSE terms matter somewhere in the data: a bit code 0-7 per parameter vector.

    A term is alive when its log value comes within ``floor`` nats of the smallest log loss on some run.
    Degenerate solutions (E -> 0, or one power law vanishing) are local minima at infinity that many starts
    reach quickly; grouping by signature keeps them from crowding out the interior optimum when pruning.
    """
    a, alpha, b, beta, e = theta.T
    cut = data.logL.min() - floor
    u_alive = (a[:, None] - alpha[:, None] * data.x).max(axis=1) > cut
    v_alive = (b[:, None] - beta[:, None] * data.y).max(axis=1) > cut
    return u_alive * 4 + v_alive * 2 + (e > cut) * 1


def _keep_best_per_group(f: np.ndarray, groups: np.ndarray, keep: float) -> np.ndarray:
    """Indices of the best ``keep`` fraction within each group (at least one per group), best first."""
    f = np.where(np.isfinite(f), f, np.inf)
    chosen = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        idx = idx[np.argsort(f[idx])]
        chosen.append(idx[:max(1, int(np.ceil(keep * len(idx))))])
    out = np.concatenate(chosen)
    return out[np.argsort(f[out])]


def multistart(grid: np.ndarray, data: RunData, loss: RobustLoss, free: FreeMask, *,
               schedule=((3, 0.05), (10, 0.1), (30, 1.0))):
    """Advance every start, keeping the best fraction of each term signature after each round.

    Returns (theta, f, signature), sorted by f.
    """
    theta = grid.astype(float)
    lam = state = None
    for iters, keep in schedule:
        theta, f, g, lam, (f, g, H) = lm_steps(theta, data, loss, free, iters=iters, lam=lam, state=state)
        sig = term_signature(theta, data)
        order = _keep_best_per_group(f, sig, keep)
        theta, lam, state = theta[order], lam[order], (f[order], g[order], H[order])
    return theta, state[0], term_signature(theta, data)


def polish(theta: np.ndarray, data: RunData, loss: RobustLoss, free: FreeMask, *,
           maxiter: int = 2000):
    """L-BFGS-B from one start with an analytic gradient and tight tolerances; returns scipy's result."""
    return minimize(objective_and_grad_single, theta[free.mask], jac=True, method="L-BFGS-B",
                    args=(data.x, data.y, data.logL, data.w, loss, free),
                    options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20})


def newton_polish(first, data: RunData, loss: RobustLoss, free: FreeMask):
    """Trust-region Newton on the exact piecewise Hessian, from an L-BFGS-B result; the better of the two.

    L-BFGS-B stalls a hair above the minimum of the Huber objective, whose curvature jumps where a
    residual crosses delta; Newton on the exact Hessian lands on it once that active set settles.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        second = minimize(objective_and_grad_single, first.x, jac=True, hess=exact_hessian_single,
                          method="trust-exact", args=(data.x, data.y, data.logL, data.w, loss, free),
                          options={"maxiter": 100, "gtol": 1e-13})
    best = second if np.isfinite(second.fun) and second.fun <= first.fun else first
    best.message = f"L-BFGS-B {_stopped(first)}, then trust-exact Newton {_stopped(second)}"
    return best


def _stopped(res) -> str:
    """How an optimiser stopped, in words: scipy's "failure to predict improvement" from a start at the
    minimum is a stop at machine precision, not a failure (whether it is a minimum: the gradient test)."""
    text = str(res.message)
    if res.success or "CONVERGENCE" in text:
        return "converged"
    if "predict improvement" in text or "precision" in text.lower():
        return "stopped: no step lowers the objective further (machine precision)"
    return f"stopped: {text}"


def value(theta: np.ndarray, data: RunData, loss: RobustLoss) -> float:
    return float(objective(theta[None, :], data.x, data.y, data.logL, data.w, loss)[0])
