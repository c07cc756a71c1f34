"""The model family: one shape per width, used by the study planner, `train --params`, `plan`'s shape
suggestions and the report, so a given N means the same model everywhere.

Widths 32..16384 (steps of 8 below 128, 16 below 1024, 64 below 4096, 128 above), depth = width / 48
rounded and at least 2, heads of 8 below width 128, 16 below 256, 32 below 1024, 64 below 4096, 128
above; rotary positions, tied head.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..errors import ScalingLabError
from .accounting import ModelShape, param_breakdown

# d_model per layer. Kaplan et al. 2020 Fig. 5: loss is flat to a few % over aspect ~20-200. Measured on
# the embedded corpus (docs/study.md): at ~100k parameters a 3-block model of the same N as a 2-block one
# lost 1-1.5% more, so the family has one depth per width rather than a band of aspect ratios.
ASPECT = 48
MIN_DEPTH = 2   # one block cannot compose attention heads: a different curve, not a smaller model
POSITIONS = "rope"  # learned positions left byte-level models on a plateau for ~1M tokens (docs/training.md)


def widths() -> list[int]:
    return [*range(32, 128, 8), *range(128, 1024, 16), *range(1024, 4096, 64), *range(4096, 16385, 128)]


def heads(d_model: int) -> tuple[int, int]:
    """(n_head, d_head) for a width of the family."""
    d_head = next((h for limit, h in ((128, 8), (256, 16), (1024, 32), (4096, 64)) if d_model < limit), 128)
    return d_model // d_head, d_head


def depth_for(d_model: int) -> int:
    return max(MIN_DEPTH, round(d_model / ASPECT))


def shape_for_width(d_model: int, *, vocab_size: int = 256, n_ctx: int = 128,
                    tied: bool = True) -> ModelShape:
    n_head, d_head = heads(d_model)
    return ModelShape(n_layer=depth_for(d_model), d_model=d_model, n_head=n_head, d_head=d_head,
                      d_ff=4 * d_model, vocab_size=vocab_size, n_ctx=n_ctx, tied=tied, positions=POSITIONS)


@lru_cache(maxsize=32)
def family_shapes(vocab_size: int = 256, n_ctx: int = 128, tied: bool = True) -> tuple[ModelShape, ...]:
    """Every shape of the family for this vocabulary and context, smallest first."""
    shapes = (shape_for_width(d, vocab_size=vocab_size, n_ctx=n_ctx, tied=tied) for d in widths())
    return tuple(sorted(shapes, key=lambda s: param_breakdown(s)["total"]))


@lru_cache(maxsize=32)
def _counts(vocab_size: int, n_ctx: int, tied: bool, kind: str) -> np.ndarray:
    return np.array([param_breakdown(s)[kind] for s in family_shapes(vocab_size, n_ctx, tied)], dtype=float)


def shape_for_params(target: float, *, kind: str = "total", vocab_size: int = 256, n_ctx: int = 128,
                     tied: bool = True) -> ModelShape:
    """The family's shape whose ``kind`` ("total", Chinchilla's N, or "nonembed", Kaplan's) parameter count
    is nearest ``target`` in log."""
    if not (math.isfinite(target) and target > 0):
        raise ScalingLabError(f"target parameter count must be positive, got {target}")
    if kind not in ("nonembed", "total"):
        raise ScalingLabError(f"parameter count kind must be 'nonembed' or 'total', got {kind!r}")
    counts = _counts(vocab_size, n_ctx, tied, kind)
    return family_shapes(vocab_size, n_ctx, tied)[int(np.argmin(np.abs(np.log(counts / target))))]


# Named sizes for debugging and single runs: "debug" is the smallest model that still learns the corpus in
# seconds (used by CI); the others are family members of 2-12 blocks.
NAMED_WIDTHS = {"xs": 96, "s": 192, "m": 288, "l": 384, "xl": 576}


def named_shape(name: str, *, vocab_size: int = 256, n_ctx: int = 256, tied: bool = True) -> ModelShape:
    """A named size: "debug" (2 layers, d_model 64) or one of NAMED_WIDTHS (the family's shape of that
    width)."""
    if name == "debug":
        return ModelShape(n_layer=2, d_model=64, n_head=4, d_head=16, d_ff=256, vocab_size=vocab_size,
                          n_ctx=n_ctx, tied=tied, positions=POSITIONS)
    if name not in NAMED_WIDTHS:
        raise ScalingLabError(f"unknown size {name!r}: choose debug or one of {', '.join(NAMED_WIDTHS)}")
    return shape_for_width(NAMED_WIDTHS[name], vocab_size=vocab_size, n_ctx=n_ctx, tied=tied)
