"""Optimiser pieces: AdamW parameter groups, the warm-up + cosine schedule, the default LR rule."""
from __future__ import annotations

import math

import torch

# Default peak LR for a model of N non-embedding parameters: lr = LR_COEF * (N / 1e6) ** LR_EXPONENT,
# fitted by benchmarks/lr_sweep.py on the embedded corpus (bytes, n_ctx 128, batch 16, 0.5-1.5M tokens;
# docs/training.md has the table). Outside the swept sizes the rule is held at its end values rather than
# extrapolated: sweep again for larger models.
LR_COEF = 0.0146
LR_EXPONENT = 0.282
LR_SWEPT_N = (12_480, 788_736)


def default_lr(n_params_nonembed: float) -> float:
    """The calibrated peak LR for this size (one LR for every size biases the fitted exponents)."""
    n = min(max(n_params_nonembed, LR_SWEPT_N[0]), LR_SWEPT_N[1])
    return LR_COEF * (n / 1e6) ** LR_EXPONENT


def default_warmup(steps: int) -> int:
    """100 steps, but never more than a quarter of the run.

    5% of the run was too short for short runs: tiny byte-level models at LR >= 8e-3 spiked at the end of
    a 25-step warm-up and lost the plateau escape (docs/training.md).
    """
    return max(1, min(100, steps // 4))


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
