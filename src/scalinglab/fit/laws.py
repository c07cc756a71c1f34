"""The scaling laws of Kaplan et al. 2020 and Hoffmann et al. 2022 as small pure, vectorised functions.

Inside this module the papers' symbols are used (N, D, C, S, B, E, A, alpha, ...); every function takes
array-likes, broadcasts them with numpy, and returns an ndarray (a 0-d array for scalar inputs).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

PF_DAY = 1e15 * 86400.0  # FLOPs in one petaflop/s-day (8.64e19), Kaplan 2020's unit of compute


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


# ---- Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (arXiv 2001.08361) ----

def kaplan_loss_n(N: ArrayLike, *, N_c: float, alpha_N: float, E: float = 0.0) -> np.ndarray:
    """L(N) = (N_c/N)^alpha_N  (+ E), models trained to convergence. Kaplan 2020, eq. (1.1).

    N is the non-embedding parameter count. ``E`` > 0 gives the irreducible-loss variant.
    """
    return E + (N_c / _arr(N)) ** alpha_N


def kaplan_loss_d(D: ArrayLike, *, D_c: float, alpha_D: float, E: float = 0.0) -> np.ndarray:
    """L(D) = (D_c/D)^alpha_D  (+ E), large models early-stopped on D tokens. Kaplan 2020, eq. (1.2)."""
    return E + (D_c / _arr(D)) ** alpha_D


def kaplan_loss_c(C_min: ArrayLike, *, C_c: float, alpha_C: float, E: float = 0.0) -> np.ndarray:
    """L(C_min) = (C_c/C_min)^alpha_C  (+ E), on the compute-efficient frontier. Kaplan 2020, eq. (1.3).

    C_min and C_c must be in the same unit (the paper uses PF-days).
    """
    return E + (C_c / _arr(C_min)) ** alpha_C


def kaplan_loss_nd(N: ArrayLike, D: ArrayLike, *, N_c: float, D_c: float, alpha_N: float,
                   alpha_D: float, E: float = 0.0) -> np.ndarray:
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D  (+ E). Kaplan 2020, eq. (1.5).

    With Table 2's constants, L(N=1e8, D=1e9) = 2.9567.
    """
    inner = (N_c / _arr(N)) ** (alpha_N / alpha_D) + D_c / _arr(D)
    return E + inner ** alpha_D


def kaplan_loss_ns(N: ArrayLike, S_min: ArrayLike, *, N_c: float, S_c: float, alpha_N: float,
                   alpha_S: float, E: float = 0.0) -> np.ndarray:
    """L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S  (+ E). Kaplan 2020, eq. (1.6)."""
    return E + (N_c / _arr(N)) ** alpha_N + (S_c / _arr(S_min)) ** alpha_S


def critical_batch_size(L: ArrayLike, *, B_star: float, alpha_B: float) -> np.ndarray:
    """B_crit(L) = B* / L^(1/alpha_B), in tokens. Kaplan 2020, eq. (1.4)."""
    return B_star / _arr(L) ** (1.0 / alpha_B)


def min_steps(S: ArrayLike, B: ArrayLike, B_crit: ArrayLike) -> np.ndarray:
    """S_min = S / (1 + B_crit/B): steps had the batch been far below B_crit. Kaplan 2020, eq. (5.4)."""
    return _arr(S) / (1.0 + _arr(B_crit) / _arr(B))


def min_examples(E_: ArrayLike, B: ArrayLike, B_crit: ArrayLike) -> np.ndarray:
    """E_min = E / (1 + B/B_crit): examples had the batch been far above B_crit. Kaplan 2020, eq. (5.5)."""
    return _arr(E_) / (1.0 + _arr(B) / _arr(B_crit))


def gradient_noise_scale(trace_cov: ArrayLike, grad_sq_norm: ArrayLike) -> np.ndarray:
    """B_simple = tr(Sigma) / |G|^2, the simple noise scale. McCandlish et al. 2018, eq. (2.9)."""
    return _arr(trace_cov) / _arr(grad_sq_norm)


def kaplan_n_opt(C_min_pf_days: ArrayLike, *, N_e: float = 1.3e9, exponent: float = 0.73) -> np.ndarray:
    """Compute-efficient model size N = (1.3e9) * C_min^0.73, C_min in PF-days. Kaplan 2020, Fig. 14 / eq.
    (1.7)."""
    return N_e * _arr(C_min_pf_days) ** exponent


# ---- Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (arXiv 2203.15556) ----

def chinchilla_loss(N: ArrayLike, D: ArrayLike, *, E: float, A: float, B: float, alpha: float,
                    beta: float) -> np.ndarray:
    """L(N, D) = E + A/N^alpha + B/D^beta. Hoffmann et al. 2022, eq. (2); N counts all parameters."""
    return E + A / _arr(N) ** alpha + B / _arr(D) ** beta


def chinchilla_lse_log_loss(logN: ArrayLike, logD: ArrayLike, *, a: float, b: float, e: float,
                            alpha: float, beta: float) -> np.ndarray:
    """log L = LSE(a - alpha*log N, b - beta*log D, e), the form fitted in Hoffmann 2022 §D.2 (A=e^a, ...)."""
    terms = np.stack(np.broadcast_arrays(a - alpha * _arr(logN), b - beta * _arr(logD),
                                         np.full(np.shape(logN), float(e))))
    top = terms.max(axis=0)
    return top + np.log(np.exp(terms - top).sum(axis=0))


def chinchilla_optimal(C: ArrayLike, *, A: float, B: float, alpha: float, beta: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Efficient frontier under C = 6ND: N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b. Hoffmann 2022, eq. (4).

    G = (alpha*A / (beta*B))^(1/(alpha+beta)), a = beta/(alpha+beta), b = alpha/(alpha+beta).
    """
    with np.errstate(all="ignore"):  # a negative exponent gives NaN here (no optimum), never a complex number
        s = np.asarray(alpha, dtype=float) + beta
        G = np.asarray(alpha * A / (beta * B), dtype=float) ** (1.0 / s)
        x = _arr(C) / 6.0
        return G * x ** (beta / s), x ** (alpha / s) / G


def data_constrained_tokens(U: ArrayLike, R: ArrayLike, *, R_star: float) -> np.ndarray:
    """Effective data D' = U + U*R*(1 - exp(-R/R*)), U unique tokens repeated R more times.

    Muennighoff et al. 2023, "Scaling Data-Constrained Language Models", eq. (5) (R = epochs - 1).
    """
    U, R = _arr(U), _arr(R)
    return U + U * R_star * (1.0 - np.exp(-R / R_star))


# ---- Forms beyond the papers' additive one (candidates of `fit --law auto`, DESIGN.md §11) ----

def interaction_loss(N: ArrayLike, D: ArrayLike, *, E: float, A: float, alpha: float, B: float, gamma: float,
                     beta: float) -> np.ndarray:
    """L(N, D) = E + A/N^alpha + B/(N^gamma D^beta): Chinchilla's eq. (2) with a data term that depends on
    N (gamma < 0: larger models keep gaining from data longer). gamma = 0 is Chinchilla's form."""
    N = _arr(N)
    return E + A / N ** alpha + B / (N ** gamma * _arr(D) ** beta)


def farseer_loss(N: ArrayLike, D: ArrayLike, *, E: float, A: float, alpha: float, B: float, gamma: float,
                 beta: float, kappa: float, N_ref: float = 1e8) -> np.ndarray:
    """L(N, D) = E + A/N^alpha + B(N) D^(-beta(N)) with B(N) = B N^-gamma and beta(N) = beta (N/N_ref)^kappa.

    After Li et al. 2025 (Farseer, arXiv 2506.10972, eq. 4), whose data term's scale and exponent are smooth
    functions of N (there exp(a N^alpha + b) each, 9 parameters); here log B and log beta are linear in log
    N, 7 parameters in all. kappa = 0 is ``interaction_loss``.
    """
    N = _arr(N)
    return E + A / N ** alpha + B * N ** -gamma * _arr(D) ** -(beta * (N / N_ref) ** kappa)
