"""Optimiser pieces: AdamW parameter groups, the LR schedules (cosine, WSD), the default LR rule."""
from __future__ import annotations

import math

import torch

# Default peak LR: lr = LR_WIDTH_COEF / d_model. With weights initialised at std ~ 1/sqrt(d_model)
# (model/gpt.py), Adam's best step size falls as 1/width (the hidden-weight rule of muP, Yang et al. 2022,
# Table 3). Measured by benchmarks/lr_sweep.py on the study family (bytes, n_ctx 128, batch 16, WSD, beta2
# 0.99, 0.5-2M tokens, 2 seeds at two LRs): best LR x d_model = 0.43 at width 40, 0.49 at 64, <= 0.42 at
# 104 (2M tokens), and the optimum falls with duration (width 40: 0.021 at 1M tokens, 0.011 at 2M); 0.4
# suits the grid's 0.6-8M-token runs. The loss is flat within ~1% over a factor 2 around it.
LR_WIDTH_COEF = 0.4


def default_lr(d_model: int) -> float:
    """The calibrated peak LR for this width (one LR for every size biases the fitted exponents)."""
    return LR_WIDTH_COEF / d_model


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


SCHEDULES = ("cosine", "wsd")


def cooldown_start(steps: int, cooldown_frac: float) -> int:
    """The first step of a WSD run's cool-down: the last ``cooldown_frac`` of its steps decay."""
    return steps - max(1, round(cooldown_frac * steps))


def lr_at(step: int, *, peak: float, steps: int, warmup: int, min_frac: float, schedule: str = "cosine",
          cooldown_frac: float = 0.2) -> float:
    """The LR of a 0-based step: linear warm-up to ``peak``, then

    - ``cosine``: decay to min_frac * peak exactly at the run's last step. The cycle length is the run's
      own: a run cut short of a longer schedule ends too high and overstates its loss (Hoffmann et al.
      2022, §3.1 and Fig. A1).
    - ``wsd`` (warm-up, stable, decay): constant at ``peak`` until the last ``cooldown_frac`` of the run,
      then a (1 - sqrt) cool-down towards min_frac * peak, the shape Hägele et al. 2024 (§3) found best.
      Until its cool-down a run's LRs are those of any longer run of the same peak and warm-up, so shorter
      runs can branch off a longer one's stable phase.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "wsd":
        start = cooldown_start(steps, cooldown_frac)
        if step < start:
            return peak
        progress = (step - start) / (steps - start)
        return peak * (min_frac + (1 - min_frac) * (1 - math.sqrt(progress)))
    progress = (step - warmup) / max(1, steps - warmup - 1)
    return peak * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
