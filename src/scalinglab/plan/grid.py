"""Planning a study's runs: IsoFLOP grids whose runs hit their budgets exactly, and the held-out run."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..errors import ScalingLabError
from ..model.accounting import ModelShape, flops_per_token, param_breakdown
from .spec import RunSpec
from .study import StudyConfig


ASPECT = 48     # d_model per layer; Kaplan et al. 2020 Fig. 5: loss is flat to a few % over aspect ~20-200
MIN_DEPTH = 2   # one block cannot compose attention heads: a different curve, not a smaller model


def _heads(d_model: int) -> tuple[int, int]:
    """(n_head, d_head): heads of 8 below width 128, of 16 below 256, of 32 above."""
    d_head = 8 if d_model < 128 else 16 if d_model < 256 else 32
    return d_model // d_head, d_head


def depth_for(d_model: int) -> int:
    return max(MIN_DEPTH, round(d_model / ASPECT))


@lru_cache(maxsize=16)
def candidate_shapes(vocab_size: int, n_ctx: int) -> tuple[ModelShape, ...]:
    """One family, one shape per width: widths 32..1024 (steps of 8 below 128, of 16 above), depth =
    width/48 rounded, at least 2. Steps of 8 keep neighbours 20-45% apart in N at the small end.

    Measured on the embedded corpus (docs/study.md): at ~100k parameters a 3-block model of the same N
    as a 2-block one lost 1-1.5% more, so mixing depths at one size adds shape noise of the order of the
    2% prediction bar; hence one depth per width rather than a band of aspect ratios.
    """
    shapes = []
    for d_model in [*range(32, 128, 8), *range(128, 1025, 16)]:
        n_head, d_head = _heads(d_model)
        shapes.append(ModelShape(n_layer=depth_for(d_model), d_model=d_model, n_head=n_head, d_head=d_head,
                                 d_ff=4 * d_model, vocab_size=vocab_size, n_ctx=n_ctx))
    return tuple(sorted(shapes, key=lambda s: param_breakdown(s)["total"]))


def nearest_shape(n_target: float, vocab_size: int, n_ctx: int) -> ModelShape:
    """The family's shape nearest n_target in log total parameters."""
    shapes = candidate_shapes(vocab_size, n_ctx)
    return shapes[int(np.argmin(np.abs(np.log(_totals(vocab_size, n_ctx) / n_target))))]


@lru_cache(maxsize=16)
def _totals(vocab_size: int, n_ctx: int) -> np.ndarray:
    return np.array([param_breakdown(s)["total"] for s in candidate_shapes(vocab_size, n_ctx)], dtype=float)


def spec_for_budget(shape: ModelShape, flops: float, cfg: StudyConfig) -> RunSpec:
    """The run of this shape whose exact (Appendix F) FLOPs come nearest the budget in whole steps."""
    tokens_per_step = cfg.batch_size * shape.n_ctx
    steps = max(1, round(flops / (flops_per_token(shape, "chinchilla") * tokens_per_step)))
    return RunSpec(shape=shape, n_tokens=steps * tokens_per_step, batch_size=cfg.batch_size, seed=cfg.seed,
                   data=cfg.data, tokenizer=cfg.tokenizer, n_eval_tokens=cfg.n_eval_tokens,
                   unique_tokens=cfg.unique_tokens or None)


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


def sweep_grid(cfg: StudyConfig, vocab_size: int) -> list[tuple[float, RunSpec]]:
    """A batch-size sweep: the family's model nearest ``sweep_params``, ``sweep_tokens`` tokens at each batch
    size, constant LR after warm-up and 40 evals, so steps-to-loss compare across batch sizes."""
    shape = nearest_shape(cfg.sweep_params, vocab_size, cfg.n_ctx)
    out = []
    for batch in sorted(set(cfg.batch_sizes)):
        tokens_per_step = batch * cfg.n_ctx
        steps = max(cfg.min_steps, round(cfg.sweep_tokens / tokens_per_step))
        spec = RunSpec(shape=shape, n_tokens=steps * tokens_per_step, batch_size=batch, seed=cfg.seed,
                       data=cfg.data, tokenizer=cfg.tokenizer, n_eval_tokens=cfg.n_eval_tokens, n_evals=40,
                       min_lr_frac=1.0, noise_every=5, unique_tokens=cfg.unique_tokens or None)
        out.append((spec.n_tokens * flops_per_token(shape, "chinchilla"), spec))
    return out
