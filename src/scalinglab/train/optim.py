"""Optimiser pieces: AdamW parameter groups, the warm-up + cosine schedule, the default LR rule."""
from __future__ import annotations

import math

import torch

# Default peak LR for a model of N non-embedding parameters: lr = LR_COEF * (N / 1e6) ** LR_EXPONENT.
# Calibrated on the embedded corpus by benchmarks/lr_sweep.py (docs/training.md has the table).
LR_COEF = 3e-3
LR_EXPONENT = -0.25


def default_lr(n_params_nonembed: float) -> float:
    """Larger models want smaller steps; one LR for every size biases the fitted exponents."""
    return LR_COEF * (n_params_nonembed / 1e6) ** LR_EXPONENT


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices and embeddings (dim >= 2); leave LayerNorm weights and biases alone."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, *, peak: float, steps: int, warmup: int, min_frac: float) -> float:
    """Linear warm-up to ``peak``, then cosine decay to min_frac * peak exactly at the run's last step.

    The cycle length is the run's own: a run cut short of a longer schedule ends too high and overstates
    its loss (Hoffmann et al. 2022, §3.1 and Fig. A1).
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup - 1)
    return peak * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
