"""Robust losses and the batched Approach-3 objective: value, gradient and Gauss-Newton Hessian.

Parameters are the LSE form of Hoffmann et al. 2022 §D.2, ordered ``THETA = (a, alpha, b, beta, e)``:
log L_hat = LSE(a - alpha*log N, b - beta*log D, e), with A = e^a, B = e^b, E = e^e.
Everything is evaluated for S parameter vectors at once (multi-start and bootstrap share this code), and
the sums over runs are written as matrix products so numpy hands them to BLAS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ScalingLabError

THETA = ("a", "alpha", "b", "beta", "e")
LOSSES = ("huber", "mse", "asymmetric")


@dataclass(frozen=True, kw_only=True)
class RobustLoss:
    """rho(r) on log-loss residuals r = log L_hat - log L, with its derivative psi and IRLS weight psi/r.

    ``huber``: r^2/2 inside |r| <= delta, delta(|r| - delta/2) outside (Hoffmann 2022 §D.2 uses delta=1e-3).
    ``mse``: r^2/2. ``asymmetric``: Huber weighted 2*tau for over-predictions (r > 0) and 2*(1 - tau) for
    under-predictions, so tau > 0.5 pulls the law toward the lower envelope of noisy or under-tuned runs.
    """

    name: str = "huber"
    delta: float = 1e-3
    tau: float = 0.5

    def __post_init__(self):
        if self.name not in LOSSES:
            raise ScalingLabError(f"unknown loss {self.name!r}: choose one of {', '.join(LOSSES)}")
        if not self.delta > 0:
            raise ScalingLabError(f"Huber delta must be positive, got {self.delta}")
        if not 0 < self.tau < 1:
            raise ScalingLabError(f"asymmetry tau must lie in (0, 1), got {self.tau}")

    def _side(self, r: np.ndarray) -> np.ndarray | float:
        if self.name != "asymmetric":
            return 1.0
        return np.where(r > 0, 2 * self.tau, 2 * (1 - self.tau))

    def rho(self, r: np.ndarray) -> np.ndarray:
        if self.name == "mse":
            return 0.5 * r * r
        c = np.clip(r, -self.delta, self.delta)  # c(r - c/2) is Huber on both sides of the kink
        return self._side(r) * c * (r - 0.5 * c)

    def psi(self, r: np.ndarray) -> np.ndarray:
        if self.name == "mse":
            return r
        return self._side(r) * np.clip(r, -self.delta, self.delta)

    def irls_weight(self, r: np.ndarray) -> np.ndarray:
        """psi(r)/r: the weight of the quadratic that majorises rho at r (exact for Huber, IRLS)."""
        if self.name == "mse":
            return np.ones_like(r)
        return self._side(r) * np.minimum(1.0, self.delta / np.maximum(np.abs(r), 1e-300))

    def psi_prime(self, r: np.ndarray) -> np.ndarray:
        """d psi / d r: 1 inside the Huber band, 0 outside (the exact curvature, for Newton polishing)."""
        if self.name == "mse":
            return np.ones_like(r)
        return self._side(r) * (np.abs(r) <= self.delta)

    def rho_psi_weight(self, r: np.ndarray):
        """rho, psi and psi/r together, sharing the clipped residual (the hot path of every fit)."""
        if self.name == "mse":
            return 0.5 * r * r, r, np.ones_like(r)
        c = np.clip(r, -self.delta, self.delta)
        rho = c * (r - 0.5 * c)
        wgt = np.minimum(1.0, self.delta / np.maximum(np.abs(r), 1e-300))
        if self.name == "asymmetric":
            side = self._side(r)
            return side * rho, side * c, side * wgt
        return rho, c, wgt


def _softmax3(theta: np.ndarray, x: np.ndarray, y: np.ndarray):
    """LSE prediction and the softmax weights of its three terms, each (S, R)."""
    a, alpha, b, beta, e = (theta[:, k:k + 1] for k in range(5))
    u = a - alpha * x
    v = b - beta * y
    top = np.maximum(np.maximum(u, v), e)
    eu = np.exp(np.subtract(u, top, out=u), out=u)
    ev = np.exp(np.subtract(v, top, out=v), out=v)
    ee = np.exp(e - top)
    tot = eu + ev
    tot += ee
    pred = np.log(tot)
    pred += top
    inv = np.reciprocal(tot, out=tot)
    eu *= inv
    ev *= inv
    ee *= inv
    return pred, eu, ev, ee


def objective(theta: np.ndarray, x: np.ndarray, y: np.ndarray, logL: np.ndarray, w: np.ndarray,
              loss: RobustLoss) -> np.ndarray:
    """Sum over runs of w_i * rho(r_i) for each of S parameter vectors: shape (S,)."""
    theta = np.atleast_2d(theta)
    block = max(1, _BLOCK_ELEMENTS // max(1, x.size))
    out = np.empty(theta.shape[0])
    for i in range(0, theta.shape[0], block):
        wi = w[i:i + block] if w.ndim == 2 else w
        out[i:i + block] = (loss.rho(_softmax3(theta[i:i + block], x, y)[0] - logL) * wi).sum(axis=1)
    return out


# Starts are evaluated in blocks whose (block, runs) temporaries stay in cache: one pass over 4500 x 250
# arrays allocates fresh pages for every temporary and ran 2.5x slower than the same work in blocks.
_BLOCK_ELEMENTS = 1 << 14


def objective_grad_hess(theta: np.ndarray, x: np.ndarray, y: np.ndarray, logL: np.ndarray,
                        w: np.ndarray, loss: RobustLoss):
    """Objective (S,), gradient (S, 5) and IRLS Gauss-Newton Hessian (S, 5, 5), in THETA order.

    w is (R,) or (S, R) (bootstrap counts). The Jacobian of the prediction is
    [p_u, -p_u x, p_v, -p_v y, p_e] with p the softmax weights, so every sum is a (S,R) @ (R,k) product.
    """
    theta = np.atleast_2d(theta)
    S = theta.shape[0]
    block = max(1, _BLOCK_ELEMENTS // max(1, x.size))
    if S <= block:
        return _objective_grad_hess(theta, x, y, logL, w, loss)
    f, g, H = np.empty(S), np.empty((S, 5)), np.empty((S, 5, 5))
    for i in range(0, S, block):
        wi = w[i:i + block] if w.ndim == 2 else w
        f[i:i + block], g[i:i + block], H[i:i + block] = _objective_grad_hess(
            theta[i:i + block], x, y, logL, wi, loss)
    return f, g, H


def _objective_grad_hess(theta, x, y, logL, w, loss):
    pred, pu, pv, pe = _softmax3(theta, x, y)
    r = pred - logL
    rho, P, Q = loss.rho_psi_weight(r)
    f = (rho * w).sum(axis=1)
    P *= w
    Q *= w
    one = np.ones_like(x)
    g = np.empty((theta.shape[0], 5))
    g[:, 0:2] = (P * pu) @ np.stack([one, -x], axis=1)
    g[:, 2:4] = (P * pv) @ np.stack([one, -y], axis=1)
    g[:, 4] = (P * pe).sum(axis=1)

    Qu, Qv = Q * pu, Q * pv
    uu = (Qu * pu) @ np.stack([one, x, x * x], axis=1)
    uv = (Qu * pv) @ np.stack([one, x, y, x * y], axis=1)
    ue = (Qu * pe) @ np.stack([one, x], axis=1)
    vv = (Qv * pv) @ np.stack([one, y, y * y], axis=1)
    ve = (Qv * pe) @ np.stack([one, y], axis=1)
    ee = (Q * pe * pe).sum(axis=1)
    H = np.empty((theta.shape[0], 5, 5))
    rows = {  # (i, j): value, in THETA order; signs from the -x, -y Jacobian columns
        (0, 0): uu[:, 0], (0, 1): -uu[:, 1], (1, 1): uu[:, 2],
        (0, 2): uv[:, 0], (0, 3): -uv[:, 2], (1, 2): -uv[:, 1], (1, 3): uv[:, 3],
        (0, 4): ue[:, 0], (1, 4): -ue[:, 1],
        (2, 2): vv[:, 0], (2, 3): -vv[:, 1], (3, 3): vv[:, 2],
        (2, 4): ve[:, 0], (3, 4): -ve[:, 1], (4, 4): ee,
    }
    for (i, j), val in rows.items():
        H[:, i, j] = val
        H[:, j, i] = val
    return f, g, H


def objective_and_grad_single(theta: np.ndarray, x, y, logL, w, loss: RobustLoss, free: np.ndarray):
    """Scalar objective and gradient over the free parameters, for scipy polishing and baselines."""
    full = theta_with_fixed(theta, free)
    pred, pu, pv, pe = _softmax3(full[None, :], x, y)
    r = pred[0] - logL
    P = loss.psi(r) * w
    g = np.array([P @ pu[0], -(P * pu[0]) @ x, P @ pv[0], -(P * pv[0]) @ y, P @ pe[0]])
    return float((loss.rho(r) * w).sum()), g[free.mask]


def exact_hessian_single(theta: np.ndarray, x, y, logL, w, loss: RobustLoss, free: "FreeMask"):
    """The exact Hessian over the free parameters at one point (for the final Newton polish).

    H = sum_i w_i [psi'(r_i) J_i J_i^T + psi(r_i) (sum_k p_ik g_ik g_ik^T - J_i J_i^T)], with g_ik the
    gradients of the three LSE terms (a - alpha x, b - beta y, e), p_ik their softmax weights and
    J_i = sum_k p_ik g_ik. Each g_ik touches one block ((a, alpha), (b, beta) or e), so the sums are dots.
    """
    full = theta_with_fixed(theta, free)
    pred, pu, pv, pe = (arr[0] for arr in _softmax3(full[None, :], x, y))
    r = pred - logL
    J = np.stack([pu, -pu * x, pv, -pv * y, pe], axis=1)
    c1 = w * loss.psi(r)
    H = J.T @ ((w * loss.psi_prime(r) - c1)[:, None] * J)
    cu, cv = c1 * pu, c1 * pv
    H[0:2, 0:2] += [[cu.sum(), -cu @ x], [-cu @ x, cu @ (x * x)]]
    H[2:4, 2:4] += [[cv.sum(), -cv @ y], [-cv @ y, cv @ (y * y)]]
    H[4, 4] += c1 @ pe
    return H[np.ix_(free.mask, free.mask)]


@dataclass(frozen=True)
class FreeMask:
    """Which of THETA are optimised; fixed ones keep the value given here."""

    mask: np.ndarray  # bool (5,)
    fixed_values: np.ndarray  # (5,), used where mask is False


def theta_with_fixed(free_theta: np.ndarray, free: FreeMask) -> np.ndarray:
    full = free.fixed_values.astype(float).copy()
    full[free.mask] = free_theta
    return full
