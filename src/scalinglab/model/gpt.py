"""A GPT in one readable file: pre-LN blocks, causal SDPA attention, GELU MLP, learned positions.

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


class CausalSelfAttention(nn.Module):
    def __init__(self, s: ModelShape):
        super().__init__()
        self.n_head, self.d_head = s.n_head, s.d_head
        self.qkv = nn.Linear(s.d_model, 3 * s.n_head * s.d_head, bias=False)
        self.proj = nn.Linear(s.n_head * s.d_head, s.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.n_head * self.d_head, dim=2)
        q, k, v = (t.view(B, T, self.n_head, self.d_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.shape = shape
        self.wte = nn.Embedding(shape.vocab_size, shape.d_model)
        self.wpe = nn.Embedding(shape.n_ctx, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layer))
        self.ln_f = nn.LayerNorm(shape.d_model)
        self.lm_head = None if shape.tied else nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        self.apply(self._init)
        # GPT-2 scaling of residual projections: each block adds two, so keep the stream's variance flat
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("down.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * shape.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        logits = F.linear(x, self.wte.weight) if self.lm_head is None else self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
