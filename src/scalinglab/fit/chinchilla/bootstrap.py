"""Bootstrap over runs: every resample is a vector of run counts, and all resamples are refitted at once.

Resampling runs (not rows of a curve) keeps a run's correlated points together. Each refit starts from the
full-data optimum (warm start) and advances with the same batched Levenberg-Marquardt as the fit.
"""
from __future__ import annotations

import numpy as np

from .objectives import FreeMask, RobustLoss
from .solver import RunData, lm_steps


def gradient_tolerance(data: RunData, loss: RobustLoss, w: np.ndarray, f: np.ndarray | float,
                       rel: float = 1e-6) -> np.ndarray | float:
    """An absolute gradient tolerance: ``rel`` times the largest gradient the data could produce.

    Each run contributes at most |psi| * (1 + |log N| + |log D|) per parameter; |psi| <= delta for Huber,
    and for MSE the root-mean-square residual stands in for it.
    """
    reach = 1.0 + np.abs(data.x) + np.abs(data.y)
    if loss.name == "mse":
        total_w = np.maximum(np.sum(w, axis=-1), 1e-300)
        size = np.sqrt(np.maximum(2 * np.asarray(f) / total_w, 1e-24))
    else:
        size = loss.delta * (2 * max(loss.tau, 1 - loss.tau) if loss.name == "asymmetric" else 1.0)
    return rel * size * (w @ reach)


def resample_counts(n_runs: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_runs) counts of each run in each resample: multinomial, seeded."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_runs, np.full(n_runs, 1.0 / n_runs), size=n_boot).astype(float)


def refit_resamples(theta_hat: np.ndarray, data: RunData, loss: RobustLoss, free: FreeMask, *,
                    n_boot: int, seed: int, max_iter: int = 200, check_every: int = 10):
    """Refit every resample from theta_hat; returns (theta (K, 5), converged (K,) bool)."""
    weights = resample_counts(len(data.x), n_boot, seed) * data.w
    theta = np.repeat(theta_hat[None, :], n_boot, axis=0)
    lam = np.full(n_boot, 1e-3)
    done = np.zeros(n_boot, dtype=bool)
    active = np.arange(n_boot)
    state = None
    for _ in range(0, max_iter, check_every):
        th, f, g, lm, state = lm_steps(theta[active], data, loss, free, iters=check_every,
                                       w=weights[active], lam=lam[active], state=state)
        theta[active], lam[active] = th, lm
        tol = gradient_tolerance(data, loss, weights[active], f)
        ok = np.abs(g[:, free.mask]).max(axis=1) <= tol
        done[active[ok]] = True
        keep = ~ok
        active = active[keep]
        if active.size == 0:
            break
        state = tuple(s[keep] for s in state)
    return theta, done
