"""Parameter and FLOP accounting: pure functions of a ModelShape, every convention named.

The architecture counted is ours (pre-LN GPT, learned positions, bias-free linear layers, LayerNorm with
weight and bias). Kaplan's N excludes embeddings (token and position) and includes the LM head only when
it is untied; Chinchilla counts every parameter.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScalingLabError


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """The shape of one GPT: depth, width, heads, MLP width, vocabulary, context, tied head or not."""

    n_layer: int
    d_model: int
    n_head: int
    d_head: int
    d_ff: int
    vocab_size: int
    n_ctx: int
    tied: bool = True

    def __post_init__(self):
        for name in ("n_layer", "d_model", "n_head", "d_head", "d_ff", "vocab_size", "n_ctx"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ScalingLabError(f"model shape: {name} must be a positive integer, got {value!r}")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in
                ("n_layer", "d_model", "n_head", "d_head", "d_ff", "vocab_size", "n_ctx", "tied")}


def param_breakdown(shape: ModelShape) -> dict[str, int]:
    """Named parameter counts: wte, wpe, per-block matrices and norms, final norm, lm_head, totals."""
    s = shape
    attn_width = s.n_head * s.d_head
    attention = s.d_model * 3 * attn_width + attn_width * s.d_model
    mlp = 2 * s.d_model * s.d_ff
    norms = 2 * 2 * s.d_model  # two LayerNorms (weight + bias) per block
    blocks = s.n_layer * (attention + mlp + norms)
    out = {
        "wte": s.vocab_size * s.d_model,
        "wpe": s.n_ctx * s.d_model,
        "blocks": blocks,
        "final_norm": 2 * s.d_model,
        "lm_head": 0 if s.tied else s.vocab_size * s.d_model,
    }
    out["embedding"] = out["wte"] + out["wpe"]
    out["nonembed"] = out["blocks"] + out["final_norm"] + out["lm_head"]  # Kaplan 2020's N
    out["total"] = out["embedding"] + out["nonembed"]  # Hoffmann 2022's N
    return out
