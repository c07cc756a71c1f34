"""Planning a study's runs: IsoFLOP grids (cosine, or WSD with branched cool-downs) whose runs hit their
budgets exactly, seed repeats for run-to-run noise, and the held-out run at the fitted optimum."""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from ..errors import ScalingLabError
from ..model.accounting import ModelShape, flops_per_token, param_breakdown
from ..model.family import family_shapes, shape_for_params
from .config import StudyConfig
from .spec import RunSpec


def spec_for_budget(shape: ModelShape, flops: float, cfg: StudyConfig) -> RunSpec:
    """The run of this shape whose exact (Appendix F) FLOPs come nearest the budget in whole steps."""
    tokens_per_step = cfg.batch_size * shape.n_ctx
    steps = max(1, round(flops / (flops_per_token(shape, "chinchilla") * tokens_per_step)))
    schedule = {"schedule": "wsd", "cooldown_frac": cfg.cooldown_frac, "min_lr_frac": 0.0} \
        if cfg.schedule == "wsd" else {}
    return RunSpec(shape=shape, n_tokens=steps * tokens_per_step, batch_size=cfg.batch_size,
                   seed=cfg.seed, data=cfg.data, tokenizer=cfg.tokenizer, val_data=cfg.val_data,
                   n_eval_tokens=cfg.n_eval_tokens, unique_tokens=cfg.unique_tokens or None, beta2=cfg.beta2,
                   warmup_steps=cfg.warmup_steps or None, precision=cfg.precision, **schedule)


def isoflop_grid(cfg: StudyConfig, vocab_size: int) -> list[tuple[float, RunSpec]]:
    """(budget, spec) for every budget: sizes log-spaced over size_span around the expected optimum.

    Sizes too big to take ``min_steps`` steps within the budget are dropped; a budget left with fewer than
    3 sizes is an error naming it. With ``schedule = "wsd"`` the sizes are one set for every budget (see
    wsd_grid), so that each size's runs branch off one stable run.
    """
    if cfg.schedule == "wsd":
        return wsd_grid(cfg, vocab_size)
    out = []
    for C in cfg.budgets:
        shapes = _sizes_around(math.sqrt(C / (6 * cfg.tokens_per_param)), cfg, vocab_size)
        out.extend((C, s) for s in _enough_steps([spec_for_budget(s, C, cfg) for s in shapes], C, cfg))
    return out


def _sizes_around(n_mid: float, cfg: StudyConfig, vocab_size: int) -> list[ModelShape]:
    """The family's distinct shapes nearest ``sizes_per_budget`` targets log-spaced over ``size_span``."""
    targets = n_mid * np.geomspace(1 / math.sqrt(cfg.size_span), math.sqrt(cfg.size_span),
                                   cfg.sizes_per_budget)
    family = family_shapes(vocab_size, cfg.n_ctx)
    lo, hi = (param_breakdown(family[i])["total"] for i in (0, -1))
    if targets[-1] < lo or targets[0] > hi:
        raise ScalingLabError(f"the sizes around N = {n_mid:.3g} parameters lie outside the model family "
                              f"({lo:.3g}..{hi:.3g} parameters at vocab {vocab_size}, n_ctx {cfg.n_ctx}): "
                              f"{'raise' if targets[-1] < lo else 'lower'} the budget")
    shapes = [shape_for_params(n, vocab_size=vocab_size, n_ctx=cfg.n_ctx) for n in targets]
    return list(dict.fromkeys(shapes))


def _enough_steps(specs: list[RunSpec], C: float, cfg: StudyConfig) -> list[RunSpec]:
    specs = [s for s in specs if s.steps >= cfg.min_steps]
    if len(specs) < 3:
        raise ScalingLabError(f"budget {C:g} FLOPs leaves {len(specs)} model sizes with >= {cfg.min_steps} "
                              f"steps; raise the budget or lower min_steps/batch_size")
    return specs


def wsd_grid(cfg: StudyConfig, vocab_size: int) -> list[tuple[float, RunSpec]]:
    """An N x D grid that is also an IsoFLOP grid: ``sizes_per_budget`` sizes log-spaced over ``size_span``
    around the expected optimum of the geometric-mean budget, each trained (WSD) at every budget where it
    lies within the span around that budget's expected optimum and takes ``min_steps`` steps.

    A size's runs differ only in length, so the shorter ones branch off the longest one's stable phase
    (study.branch_plan): a size costs about its largest budget plus the cool-downs (``cooldown_frac``) of
    the others, and gives a point per budget, which identifies E and beta (Hägele et al. 2024, §4). The
    span must be wide enough for that: a grid kept within ~1.6x of each budget's optimum left E
    unidentified (E -> 0; docs/study.md).
    """
    budgets = sorted(cfg.budgets)
    c_mid = math.exp(np.mean(np.log(budgets)))
    shapes = _sizes_around(math.sqrt(c_mid / (6 * cfg.tokens_per_param)), cfg, vocab_size)
    half_span = math.log(cfg.size_span) / 2 + 1e-9
    out = []
    for C in budgets:
        n_prior = math.sqrt(C / (6 * cfg.tokens_per_param))
        near = [s for s in shapes if abs(math.log(param_breakdown(s)["total"] / n_prior)) <= half_span]
        out.extend((C, s) for s in _enough_steps([spec_for_budget(s, C, cfg) for s in near], C, cfg))
    return out


def noise_specs(cfg: StudyConfig, grid: list[tuple[float, RunSpec]]) -> list[tuple[float, RunSpec]]:
    """``noise_seeds`` repeats, with other seeds, of the grid run nearest the expected optimum of the middle
    budget: their spread is the run-to-run noise that a single new run carries beside the law's error."""
    if not cfg.noise_seeds:
        return []
    budgets = sorted({b for b, _ in grid})
    C = budgets[len(budgets) // 2]
    n_prior = math.sqrt(C / (6 * cfg.tokens_per_param))
    _, base = min(((b, s) for b, s in grid if b == C),
                  key=lambda bs: abs(math.log(param_breakdown(bs[1].shape)["total"] / n_prior)))
    return [(C, dataclasses.replace(base, seed=cfg.seed + k)) for k in range(1, cfg.noise_seeds + 1)]


def optimum_in_family(predict: Callable, flops: float, cfg: StudyConfig, vocab_size: int,
                      min_steps: int = 1) -> RunSpec:
    """The run of the model family that the law ``predict(N, D)`` puts lowest at ``flops`` exact
    (Appendix F) FLOPs: the budget is spent in the grid's own convention, so the held-out run sits at the
    fitted optimum of its own budget (C = 6ND differs from it by 1.1-1.8x at these shapes)."""
    specs = [spec_for_budget(s, flops, cfg) for s in family_shapes(vocab_size, cfg.n_ctx)]
    specs = [s for s in specs if s.steps >= min_steps]
    if not specs:
        raise ScalingLabError(f"no model of the family takes {min_steps} steps within {flops:g} FLOPs")
    N = np.array([param_breakdown(s.shape)["total"] for s in specs], dtype=float)
    D = np.array([s.n_tokens for s in specs], dtype=float)
    return specs[int(np.nanargmin(np.asarray(predict(N, D), dtype=float)))]


def sweep_grid(cfg: StudyConfig, vocab_size: int) -> list[tuple[float, RunSpec]]:
    """A batch-size sweep: the family's model nearest ``sweep_params``, ``sweep_tokens`` tokens at each batch
    size, constant LR after warm-up and 40 evals, so steps-to-loss compare across batch sizes."""
    shape = shape_for_params(cfg.sweep_params, vocab_size=vocab_size, n_ctx=cfg.n_ctx)
    out = []
    for batch in sorted(set(cfg.batch_sizes)):
        tokens_per_step = batch * cfg.n_ctx
        steps = max(cfg.min_steps, round(cfg.sweep_tokens / tokens_per_step))
        spec = RunSpec(shape=shape, n_tokens=steps * tokens_per_step, batch_size=batch, seed=cfg.seed,
                       data=cfg.data, tokenizer=cfg.tokenizer, val_data=cfg.val_data,
                       n_eval_tokens=cfg.n_eval_tokens, n_evals=40,
                       min_lr_frac=1.0, noise_every=5, unique_tokens=cfg.unique_tokens or None,
                       precision=cfg.precision)
        out.append((spec.n_tokens * flops_per_token(shape, "chinchilla"), spec))
    return out
