"""The generalist's network: a decoder-only transformer over token sequences (``backbones.tokenise``)."""
from __future__ import annotations

import torch
from torch import nn

from backbones.tokenise import Packed
from backbones.transformer import Block, TransformerConfig


class Decoder(nn.Module):
    """``forward(packed) -> logits [B, T, vocab]``: token embeddings plus learned embeddings of each token's
    position within its segment and of the segment (inputs or targets), causal pre-norm blocks on
    ``backbones.transformer.Block``, a final norm and a linear read-out of the next token.

    Args:
        vocab: the tokenizer's vocabulary size.
        dim, depth, heads, mlp_dim, dropout: the transformer.
        max_positions: the longest segment.
    """

    def __init__(self, vocab: int, dim: int = 128, depth: int = 4, heads: int = 4, mlp_dim: int = 512,
                 dropout: float = 0.0, max_positions: int = 256) -> None:
        super().__init__()
        cfg = TransformerConfig(dim=dim, heads=heads, mlp_dim=mlp_dim, depth=depth, class_depth=0, dropout=dropout)
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_positions, dim)
        self.segments = nn.Embedding(2, dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, packed: Packed) -> torch.Tensor:
        if packed.positions.max() >= self.positions.num_embeddings:
            raise ValueError(f"a segment of {int(packed.positions.max()) + 1} tokens is longer than the "
                             f"{self.positions.num_embeddings} positions of this network")
        x = self.tokens(packed.tokens) + self.positions(packed.positions) + self.segments(packed.loss_mask.long())
        n = packed.tokens.shape[1]
        causal = torch.full((n, n), float("-inf"), device=x.device).triu(1)[None, None]
        for block in self.blocks:
            x = block(x, bias=causal)
        return self.head(self.norm(x))
