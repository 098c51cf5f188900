"""Multi-head attention on torch's scaled_dot_product_attention (fused kernels where available)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CrossAttention(nn.Module):
    """Pre-norm multi-head attention from queries ``x [B, N, D]`` to a context ``[B, L, C]`` (self-attention
    when the context is None), with a residual connection.

    Args:
        dim: query width D; context_dim: context width C (default D); heads: number of heads (D % heads == 0).
    """

    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        context_dim = context_dim or dim
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.probe = None  # backbones.interpret.attention_probe: explicit attention, recorded (None: fused)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """``mask [B, L]``: True where a context token may be attended to; ``bias [B, heads, N, L]``: added
        to the attention logits (e.g. Particle Transformer's pair features)."""
        return x + self.update(x, context, mask, bias)

    def update(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
               bias: torch.Tensor | None = None) -> torch.Tensor:
        """What :meth:`forward` adds to ``x`` (the attention output, without the residual)."""
        h = self.norm(x)
        k, v = self.kv(h if context is None else context).chunk(2, dim=-1)

        def split(t: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, heads, T, D / heads]
            return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        attn_mask = None if mask is None else mask[:, None, None, :]
        if bias is not None:
            attn_mask = bias if attn_mask is None else bias.masked_fill(~attn_mask, float("-inf"))
        q, k, v = split(self.q(h)), split(k), split(v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask) if self.probe is None \
            else self.probe(self, q, k, v, attn_mask)
        return self.out(y.transpose(1, 2).flatten(2))
