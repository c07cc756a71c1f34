"""Seeded batches: the windows of step s depend only on (seed, s), so a resumed run sees the same data."""
from __future__ import annotations

import numpy as np


def batch_offsets(n_tokens: int, n_ctx: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Start offsets of ``batch_size`` random windows of n_ctx + 1 tokens, for this step only."""
    rng = np.random.default_rng([seed, step])
    return rng.integers(0, n_tokens - n_ctx - 1, size=batch_size)


def windows(tokens: np.ndarray, offsets: np.ndarray, n_ctx: int) -> np.ndarray:
    """(B, n_ctx + 1) int64 array of token windows starting at ``offsets``."""
    idx = offsets[:, None] + np.arange(n_ctx + 1)[None, :]
    return tokens[idx].astype(np.int64)


def eval_offsets(n_tokens: int, n_ctx: int, n_eval_tokens: int) -> np.ndarray:
    """The fixed validation subset: evenly spaced windows covering ~n_eval_tokens, identical for every run."""
    n_windows = max(1, min(n_eval_tokens // n_ctx, (n_tokens - 1) // n_ctx))
    return np.linspace(0, n_tokens - n_ctx - 1, n_windows).astype(np.int64)
