"""Planning a study's runs: IsoFLOP grids whose runs hit their budgets exactly, and the held-out run."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..errors import ScalingLabError
from ..model.accounting import ModelShape, flops_per_token, param_breakdown
from .spec import RunSpec
from .study import StudyConfig


ASPECT = 32          # preferred d_model per layer, as in the LR sweep's family
ASPECT_RANGE = (16, 48)  # Kaplan et al. 2020 Fig. 5: loss is flat to a few % over aspect ratios ~20-200
MIN_DEPTH = 2  # one block cannot compose attention heads: a different curve, not a smaller model


def _heads(d_model: int) -> tuple[int, int]:
    """(n_head, d_head): heads of 8 below width 128, of 16 below 256, of 32 above."""
    d_head = 8 if d_model < 128 else 16 if d_model < 256 else 32
    return d_model // d_head, d_head


@lru_cache(maxsize=16)
def candidate_shapes(vocab_size: int, n_ctx: int) -> tuple[ModelShape, ...]:
    """Every (width, depth) with aspect ratio width/depth in ASPECT_RANGE: widths 32..1024 in steps of 8
    below 128 and 16 above. Allowing a band of depths per width makes the ladder dense in N (about 10% apart
    at the small end, where one depth per width would leave gaps of 2-3x at every depth change)."""
    widths = [*range(32, 128, 8), *range(128, 1025, 16)]
    shapes = []
    for d_model in widths:
        for depth in range(MIN_DEPTH, d_model // ASPECT_RANGE[0] + 1):
            if ASPECT_RANGE[0] <= d_model / depth <= ASPECT_RANGE[1]:
                n_head, d_head = _heads(d_model)
                shapes.append(ModelShape(n_layer=depth, d_model=d_model, n_head=n_head, d_head=d_head,
                                         d_ff=4 * d_model, vocab_size=vocab_size, n_ctx=n_ctx))
    return tuple(sorted(shapes, key=lambda s: param_breakdown(s)["total"]))


def nearest_shape(n_target: float, vocab_size: int, n_ctx: int, tolerance: float = 0.05) -> ModelShape:
    """The ladder shape nearest n_target in log total parameters; among shapes within ``tolerance`` of the
    nearest, the one whose aspect ratio is nearest ASPECT."""
    shapes = candidate_shapes(vocab_size, n_ctx)
    totals = np.array([param_breakdown(s)["total"] for s in shapes], dtype=float)
    gap = np.abs(np.log(totals / n_target))
    close = np.flatnonzero(gap <= gap.min() + tolerance)
    return shapes[min(close, key=lambda i: abs(math.log(shapes[i].d_model / shapes[i].n_layer / ASPECT)))]


def spec_for_budget(shape: ModelShape, flops: float, cfg: StudyConfig) -> RunSpec:
    """The run of this shape whose exact (Appendix F) FLOPs come nearest the budget in whole steps."""
    tokens_per_step = cfg.batch_size * shape.n_ctx
    steps = max(1, round(flops / (flops_per_token(shape, "chinchilla") * tokens_per_step)))
    return RunSpec(shape=shape, n_tokens=steps * tokens_per_step, batch_size=cfg.batch_size, seed=cfg.seed,
                   data=cfg.data, tokenizer=cfg.tokenizer, n_eval_tokens=cfg.n_eval_tokens)


def isoflop_grid(cfg: StudyConfig, vocab_size: int) -> list[tuple[float, RunSpec]]:
    """(budget, spec) for every budget: sizes log-spaced over size_span around the expected optimum.

    Sizes too big to take ``min_steps`` steps within the budget are dropped; a budget left with fewer than
    3 sizes is an error naming it.
    """
    out = []
    for C in cfg.budgets:
        n_mid = math.sqrt(C / (6 * cfg.tokens_per_param))
        targets = n_mid * np.geomspace(1 / math.sqrt(cfg.size_span), math.sqrt(cfg.size_span), cfg.sizes_per_budget)
        shapes = []
        for n in targets:
            shape = nearest_shape(n, vocab_size, cfg.n_ctx)
            if shape not in shapes:
                shapes.append(shape)
        specs = [spec_for_budget(s, C, cfg) for s in shapes]
        specs = [s for s in specs if s.steps >= cfg.min_steps]
        if len(specs) < 3:
            raise ScalingLabError(f"budget {C:g} FLOPs leaves {len(specs)} model sizes with >= {cfg.min_steps} "
                                  f"steps; raise the budget or lower min_steps/batch_size")
        out.extend((C, s) for s in specs)
    return out


def holdout_spec(n_opt: float, flops: float, cfg: StudyConfig, vocab_size: int) -> RunSpec:
    """The held-out run: the ladder shape nearest the fitted N_opt, trained to the held-out budget."""
    return spec_for_budget(nearest_shape(n_opt, vocab_size, cfg.n_ctx), flops, cfg)
