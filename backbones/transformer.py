"""Pre-norm transformer blocks on torch's scaled_dot_product_attention, with an optional additive attention
bias (Particle Transformer's pair features) and CaiT-style class-attention blocks that pool a set into one
token. Sets are ``[B, N, D]`` with a mask ``[B, N]`` (True for real elements); padded elements never
influence real ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from backbones.attention import CrossAttention
from backbones.routing import RoutedFeedForward, RouterConfig


@dataclass
class TransformerConfig:
    dim: int = 128
    heads: int = 8
    mlp_dim: int = 512
    depth: int = 8
    class_depth: int = 2
    dropout: float = 0.1
    moe: RouterConfig | None = None  # route the MLP of every ``moe.every``-th block (backbones.routing)


class FeedForward(nn.Module):
    """Pre-norm MLP with GELU and a residual connection."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Block(nn.Module):
    """Self-attention (with optional logit bias) then a feed-forward layer, both pre-norm and residual; with
    ``routed``, the feed-forward layer is ``cfg.moe``'s mixture of experts (``route_ids``: hash routing's
    token feature)."""

    def __init__(self, cfg: TransformerConfig, routed: bool = False) -> None:
        super().__init__()
        self.attn = CrossAttention(cfg.dim, heads=cfg.heads)
        if routed and cfg.moe is None:
            raise ValueError("a routed block needs TransformerConfig.moe")
        self.ff = RoutedFeedForward(cfg.dim, cfg.mlp_dim, cfg.moe, cfg.dropout) if routed else \
            FeedForward(cfg.dim, cfg.mlp_dim, cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                route_ids: torch.Tensor | None = None) -> torch.Tensor:
        x = self.attn(x, mask=mask, bias=bias)
        return self.ff(x, mask, route_ids) if isinstance(self.ff, RoutedFeedForward) else self.ff(x)


class ClassAttentionBlock(nn.Module):
    """A class token attends to itself and the set (Touvron et al. 2021, CaiT); the set is not updated."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn = CrossAttention(cfg.dim, heads=cfg.heads)
        self.ff = FeedForward(cfg.dim, cfg.mlp_dim, cfg.dropout)

    def forward(self, cls: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        context = torch.cat([cls, x], dim=1)
        if mask is not None:
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        return self.ff(self.attn(cls, context, mask=mask))


class SetTransformer(nn.Module):
    """``forward(x [B, N, D], mask, bias, route_ids) -> [B, D]``: ``depth`` blocks, then ``class_depth``
    class-attention blocks pooling the set into a learned class token. Invariant to the order of the set
    (with hash routing, as long as ``route_ids`` is a feature of each element, not its position). With
    ``cfg.moe``, blocks ``every - 1, 2 * every - 1, ...`` have routed MLPs."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList(Block(cfg, routed=cfg.moe is not None and (i + 1) % cfg.moe.every == 0)
                                    for i in range(cfg.depth))
        self.class_blocks = nn.ModuleList(ClassAttentionBlock(cfg) for _ in range(cfg.class_depth))
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.norm = nn.LayerNorm(cfg.dim)
        nn.init.trunc_normal_(self.cls, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                route_ids: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask, bias, route_ids)
        return self.pool(x, mask)

    def pool(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, N, D] -> [B, D]``: the class-attention blocks and the final norm."""
        cls = self.cls.expand(x.shape[0], -1, -1)
        for block in self.class_blocks:
            cls = block(cls, x, mask)
        return self.norm(cls[:, 0])
