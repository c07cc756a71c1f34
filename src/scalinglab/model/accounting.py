"""Parameter and FLOP accounting: pure functions of a ModelShape, every convention named.

The architecture counted is ours (pre-LN GPT, learned or rotary positions, bias-free linear layers,
LayerNorm with weight and bias). Kaplan's N excludes embeddings (token and position) and includes the LM
head only when it is untied; Chinchilla counts every parameter.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScalingLabError


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """The shape of one GPT: depth, width, heads, MLP width, vocabulary, context, tied head or not, and
    how it encodes positions: ``"learned"`` (GPT-2's table, n_ctx x d_model parameters) or ``"rope"``
    (rotary, Su et al. 2021: no parameters; the study family's choice, see model/family.py)."""

    n_layer: int
    d_model: int
    n_head: int
    d_head: int
    d_ff: int
    vocab_size: int
    n_ctx: int
    tied: bool = True
    positions: str = "learned"

    def __post_init__(self):
        if self.positions not in POSITIONS:
            raise ScalingLabError(f"model shape: positions must be one of {', '.join(POSITIONS)}, "
                                  f"got {self.positions!r}")
        for name in ("n_layer", "d_model", "n_head", "d_head", "d_ff", "vocab_size", "n_ctx"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ScalingLabError(f"model shape: {name} must be a positive integer, got {value!r}")

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in
             ("n_layer", "d_model", "n_head", "d_head", "d_ff", "vocab_size", "n_ctx", "tied")}
        if self.positions != "learned":
            d["positions"] = self.positions  # so shapes (and run ids) from before the field are unchanged
        return d


POSITIONS = ("learned", "rope")


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
        "wpe": s.n_ctx * s.d_model if s.positions == "learned" else 0,
        "blocks": blocks,
        "final_norm": 2 * s.d_model,
        "lm_head": 0 if s.tied else s.vocab_size * s.d_model,
    }
    out["embedding"] = out["wte"] + out["wpe"]
    out["nonembed"] = out["blocks"] + out["final_norm"] + out["lm_head"]  # Kaplan 2020's N
    out["total"] = out["embedding"] + out["nonembed"]  # Hoffmann 2022's N
    return out


FLOP_METHODS = ("6N", "6N+attn", "chinchilla")


def forward_flops_per_sequence_chinchilla(shape: ModelShape, *, embeddings: bool = True) -> float:
    """Forward FLOPs for one sequence of T = n_ctx tokens, Hoffmann et al. 2022 Appendix F.

    Embeddings 2TVd; per layer: QKV 2*3*T*d*(k*h), logits 2*T^2*(k*h), softmax 3*h*T^2, softmax@V
    2*T^2*(k*h), output projection 2*T*(k*h)*d, feed-forward 2*T*(2*d*d_ff); final logits 2*T*d*V.
    ``embeddings=False`` leaves out the embedding and final-logit terms (as Table A4's FLOPs do).
    Position encodings are not counted, as in Appendix F (rotary adds ~6 d FLOPs per token and layer
    against the ~24 d^2 of the matrices: under 1% of a layer from d_model 32 up).
    """
    s, T = shape, shape.n_ctx
    kh = s.n_head * s.d_head
    attention = 2 * 3 * T * s.d_model * kh + 2 * T * T * kh + 3 * s.n_head * T * T + 2 * T * T * kh \
        + 2 * T * kh * s.d_model
    dense = 2 * T * 2 * s.d_model * s.d_ff
    total = s.n_layer * (attention + dense)
    if embeddings:
        total += 2 * T * s.vocab_size * s.d_model * 2
    return float(total)


def flops_per_token(shape: ModelShape, method: str = "chinchilla") -> float:
    """Training FLOPs per token (forward + backward = 3x forward), by a named convention.

    "6N": 6 * N with N the non-embedding count (Kaplan 2020 §2.1). "6N+attn": Kaplan 2020 Table 1,
    C_fwd = 2N + 2 n_layer n_ctx d_attn, times 3. "chinchilla": Hoffmann 2022 Appendix F, every term.
    """
    if method == "6N":
        return 6.0 * param_breakdown(shape)["nonembed"]
    if method == "6N+attn":
        n = param_breakdown(shape)["nonembed"]
        return 3.0 * (2.0 * n + 2.0 * shape.n_layer * shape.n_ctx * shape.n_head * shape.d_head)
    if method == "chinchilla":
        return 3.0 * forward_flops_per_sequence_chinchilla(shape) / shape.n_ctx
    raise ScalingLabError(f"unknown FLOP convention {method!r}: choose one of {', '.join(FLOP_METHODS)}")


ACTIVATION_BYTES = {"bf16": 46, "fp32": 76}  # per sequence position x d_model x layer (memory_needed)


def memory_needed(shape, batch_size: int, precision: str = "fp32") -> int:
    """Bytes to train ``shape`` at ``batch_size`` sequences: weights, grads and AdamW's two moments (16
    bytes per parameter in fp32) plus the activations of one step."""
    n = param_breakdown(shape)["total"]
    B, T, d, L = batch_size, shape.n_ctx, shape.d_model, shape.n_layer
    # activations kept for the backward pass: Korthikanti et al. 2022 (arXiv 2205.05198) eq. 1 gives
    # s b h (34 + 5 a s / h) bytes per layer in 16-bit. The 5 a s / h term is the stored attention matrix,
    # which scaled_dot_product_attention's fused kernels never keep (model/gpt.py): left out (with it the
    # gpu-small preset's largest run "needed" 126 GiB, and was refused on an H200; it took 25.8). The rest,
    # measured on an H200 at context 512 x batch 64 (docs/gpu.md): 42-43 bytes per s b h per layer in bf16
    # autocast (the residual stream and LayerNorm inputs stay fp32), 72-74 in fp32; taken as 46 and 76,
    # so that the estimate stays above the peak (by 3-8% there), since packing divides memory by it
    per_sbh = ACTIVATION_BYTES["bf16" if precision == "bf16" else "fp32"]
    act = per_sbh * B * T * L * d + 12 * B * T * shape.vocab_size  # + the fp32 logits and their gradient
    return int(16 * n + act)
