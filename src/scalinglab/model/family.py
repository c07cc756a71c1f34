"""The model family: one knob (depth) sets the shape; width = aspect * depth, rounded to the head size.

This follows nanochat's choice: a target parameter count picks the depth whose shape counts closest.
"""
from __future__ import annotations

import math

from ..errors import ScalingLabError
from .accounting import ModelShape, param_breakdown

ASPECT = 64  # d_model per layer; Kaplan 2020 Fig. 5 finds loss flat across aspect ratios ~20-200
HEAD_DIM = 64


def shape_for_depth(n_layer: int, *, vocab_size: int, n_ctx: int, aspect: int = ASPECT,
                    head_dim: int = HEAD_DIM, tied: bool = True) -> ModelShape:
    d_model = max(head_dim, round(aspect * n_layer / head_dim) * head_dim)
    return ModelShape(n_layer=n_layer, d_model=d_model, n_head=d_model // head_dim, d_head=head_dim,
                      d_ff=4 * d_model, vocab_size=vocab_size, n_ctx=n_ctx, tied=tied)


def shape_for_params(target: float, *, kind: str = "nonembed", vocab_size: int = 256, n_ctx: int = 2048,
                     aspect: int = ASPECT, head_dim: int = HEAD_DIM, tied: bool = True,
                     max_layers: int = 512) -> ModelShape:
    """The family member whose ``kind`` ("nonembed" or "total") parameter count is nearest in log to target."""
    if not (math.isfinite(target) and target > 0):
        raise ScalingLabError(f"target parameter count must be positive, got {target}")
    if kind not in ("nonembed", "total"):
        raise ScalingLabError(f"parameter count kind must be 'nonembed' or 'total', got {kind!r}")
    best, best_gap = None, math.inf
    for depth in range(1, max_layers + 1):
        shape = shape_for_depth(depth, vocab_size=vocab_size, n_ctx=n_ctx, aspect=aspect,
                                head_dim=head_dim, tied=tied)
        gap = abs(math.log(param_breakdown(shape)[kind] / target))
        if gap < best_gap:
            best, best_gap = shape, gap
        elif param_breakdown(shape)[kind] > target:
            break
    return best


# Named sizes for byte-level CPU studies: small heads (32) so width can stay small; "debug" is the
# smallest model that still learns the corpus in seconds (used by CI).
SMALL_ASPECT, SMALL_HEAD = 32, 32
NAMED_DEPTHS = {"xs": 2, "s": 4, "m": 6, "l": 8, "xl": 12}


def named_shape(name: str, *, vocab_size: int = 256, n_ctx: int = 256, tied: bool = True) -> ModelShape:
    """A named size: "debug" (2 layers, d_model 64) or one of NAMED_DEPTHS (width 32 per layer)."""
    if name == "debug":
        return ModelShape(n_layer=2, d_model=64, n_head=4, d_head=16, d_ff=256, vocab_size=vocab_size,
                          n_ctx=n_ctx, tied=tied)
    if name not in NAMED_DEPTHS:
        raise ScalingLabError(f"unknown size {name!r}: choose debug or one of {', '.join(NAMED_DEPTHS)}")
    return shape_for_depth(NAMED_DEPTHS[name], vocab_size=vocab_size, n_ctx=n_ctx, aspect=SMALL_ASPECT,
                           head_dim=SMALL_HEAD, tied=tied)
