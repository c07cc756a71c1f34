"""A GPT in one readable file: pre-LN blocks, causal SDPA attention, GELU MLP, learned or rotary positions.

Linear layers carry no bias (as in many modern GPTs; it keeps the parameter count a clean function of the
shape, see accounting.py); LayerNorms have weight and bias. The LM head is tied to the token embedding
unless ``shape.tied`` is False.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .accounting import ModelShape


def rotary_tables(n_ctx: int, d_head: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position x frequency, (T, hs/2): rotary embeddings, Su et al. 2021 eq. (34)."""
    inv_freq = base ** (-torch.arange(0, d_head, 2, dtype=torch.float32) / d_head)
    angles = torch.arange(n_ctx, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first-half, second-half) pair of x (B, nh, T, hs) by its position's angle."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, s: ModelShape):
        super().__init__()
        self.n_head, self.d_head = s.n_head, s.d_head
        self.qkv = nn.Linear(s.d_model, 3 * s.n_head * s.d_head, bias=False)
        self.proj = nn.Linear(s.n_head * s.d_head, s.d_model, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.n_head * self.d_head, dim=2)
        # (B, nh, T, hs)
        q, k, v = (t.view(B, T, self.n_head, self.d_head).transpose(1, 2) for t in (q, k, v))
        if rope is not None:
            cos, sin = (t[:T].to(q.dtype) for t in rope)
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.d_head))


class MLP(nn.Module):
    def __init__(self, s: ModelShape):
        super().__init__()
        self.up = nn.Linear(s.d_model, s.d_ff, bias=False)
        self.down = nn.Linear(s.d_ff, s.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, s: ModelShape):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(s.d_model), CausalSelfAttention(s)
        self.ln2, self.mlp = nn.LayerNorm(s.d_model), MLP(s)

    def forward(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), rope)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.shape = shape
        self.wte = nn.Embedding(shape.vocab_size, shape.d_model)
        # Rotary positions let a tiny model attend to the previous token from its first steps; with a learned
        # table (std 0.02) byte-level models sat on a ~2.5-nat plateau for ~1M tokens (docs/training.md)
        self.wpe = nn.Embedding(shape.n_ctx, shape.d_model) if shape.positions == "learned" else None
        if shape.positions == "rope":
            cos, sin = rotary_tables(shape.n_ctx, shape.d_head)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layer))
        self.ln_f = nn.LayerNorm(shape.d_model)
        self.lm_head = None if shape.tied else nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        # Weights ~ N(0, (0.5 / sqrt(d_model))^2): GPT-2's 0.02 at d_model 768 (0.018), scaled with width.
        # GPT-2's fixed 0.02 is ~6x too small at d_model 64: such models sat ~1M tokens on a 2.5-nat plateau
        # (0.15M tokens with this init; docs/training.md). Residual projections get GPT-2's extra
        # 1/sqrt(2 n_layer): each block adds two, so the stream's variance stays flat.
        std = 0.5 / math.sqrt(shape.d_model)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                scale = math.sqrt(2 * shape.n_layer) if name.endswith(("proj.weight", "down.weight")) else 1.0
                nn.init.normal_(p, mean=0.0, std=std / scale)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        x = self.wte(idx)  # (B, T, d)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        else:
            rope = (self.rope_cos, self.rope_sin)
        for block in self.blocks:
            x = block(x, rope)
        x = self.ln_f(x)
        logits = F.linear(x, self.wte.weight) if self.lm_head is None else self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
