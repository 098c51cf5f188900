"""Perceiver IO (Jaegle et al. 2021) and the Perceiver Resampler (Alayrac et al. 2022, Flamingo).

A fixed array of M learned latents cross-attends to the N input elements, so the cost grows as N x M
rather than N^2; the latents then self-attend, and output queries read the result. The Resampler maps a
variable-size set to M tokens with a few cross-attention layers whose context is the set and the latents.
"""
from __future__ import annotations

import torch
from torch import nn

from backbones.attention import CrossAttention
from backbones.transformer import Block, FeedForward, TransformerConfig


class PerceiverIO(nn.Module):
    """``forward(x [B, N, C], mask [B, N]) -> [B, Q, D]`` for ``Q`` learned output queries."""

    def __init__(self, input_dim: int, cfg: TransformerConfig, latents: int = 32, outputs: int = 1) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, latents, cfg.dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, outputs, cfg.dim) * 0.02)
        self.encode = CrossAttention(cfg.dim, context_dim=input_dim, heads=cfg.heads)
        self.encode_ff = FeedForward(cfg.dim, cfg.mlp_dim, cfg.dropout)
        self.process = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.decode = CrossAttention(cfg.dim, heads=cfg.heads)
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        z = self.encode_ff(self.encode(self.latents.expand(x.shape[0], -1, -1), x, mask=mask))
        for block in self.process:
            z = block(z)
        return self.norm(self.decode(self.queries.expand(x.shape[0], -1, -1), z))


class PerceiverResampler(nn.Module):
    """``forward(x [B, N, D], mask) -> [B, M, D]``: M latents attend to ``[x; latents]`` in each layer."""

    def __init__(self, cfg: TransformerConfig, latents: int = 16, layers: int = 2) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, latents, cfg.dim) * 0.02)
        self.attn = nn.ModuleList(CrossAttention(cfg.dim, heads=cfg.heads) for _ in range(layers))
        self.ff = nn.ModuleList(FeedForward(cfg.dim, cfg.mlp_dim, cfg.dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        z = self.latents.expand(x.shape[0], -1, -1)
        for attn, ff in zip(self.attn, self.ff):
            context = torch.cat([x, z], dim=1)
            full = None if mask is None else torch.cat([mask, torch.ones_like(mask[:, :1]).expand(-1, z.shape[1])],
                                                       dim=1)
            z = ff(attn(z, context, mask=full))
        return self.norm(z)
