"""Optimiser pieces: AdamW parameter groups, the LR schedules (cosine, WSD), the default LR rule."""
from __future__ import annotations

import torch

# the schedules live with the plans (torch-free: the fit and plan commands use them too)
from ..plan.schedules import SCHEDULES, cooldown_start, default_warmup, lr_at  # noqa: F401

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


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices and embeddings (dim >= 2); leave LayerNorm weights and biases alone."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
