"""Flamingo's gated cross-attention (Alayrac et al. 2022): a new input for a trained, frozen transformer.

A :class:`GatedCrossAttention` layer reads a second modality ("media": vertices, tracks, another detector)
and adds ``tanh(a_attn) * attention(x, media)`` and then ``tanh(a_ff) * feed_forward(x)`` to the frozen
model's tokens; both gates start at 0, so at initialisation the model computes exactly what it computed
before, and training moves the gates only as far as the new input helps. The media are first summarised into
a fixed number of latents by a Perceiver Resampler, as in Flamingo.

:class:`GatedModel` wraps any model that holds one :class:`~backbones.transformer.SetTransformer` (a jet
tagger, say): it freezes every parameter of the model, replaces its transformer by a
:class:`GatedSetTransformer` (the same blocks, a gated layer after every ``every``-th one) and passes the media
in for the duration of a call (``model(jets, media=tokens, media_mask=mask)``), as OpenFlamingo conditions its
layers. The frozen part stays in eval mode (no dropout, no batch-statistics updates) whatever ``train()``
says; an element of the batch without any media gets exactly the frozen model's output.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from backbones.attention import CrossAttention
from backbones.perceiver import PerceiverResampler
from backbones.transformer import FeedForward, SetTransformer, TransformerConfig


class GatedCrossAttention(nn.Module):
    """``x [B, N, D]``, media ``[B, M, D]`` -> ``[B, N, D]``: tanh-gated cross-attention to the media, then a
    tanh-gated feed-forward layer, both residual, gates initialised to 0 (Flamingo's GATED XATTN-DENSE).

    Args:
        cfg: width, heads, MLP width and dropout (the frozen transformer's).
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn = CrossAttention(cfg.dim, heads=cfg.heads)
        self.ff = FeedForward(cfg.dim, cfg.mlp_dim, cfg.dropout)
        self.attn_gate = nn.Parameter(torch.zeros(1))
        self.ff_gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, media: torch.Tensor, media_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + torch.tanh(self.attn_gate) * self.attn.update(x, media, mask=media_mask)
        return x + torch.tanh(self.ff_gate) * self.ff.net(x)


class GatedSetTransformer(nn.Module):
    """A frozen :class:`SetTransformer` with a :class:`GatedCrossAttention` layer after every ``every``-th block,
    reading media tokens projected to its width and resampled to ``latents`` latents.

    Args:
        frozen: the trained transformer (its parameters are frozen here, unless ``freeze`` is False).
        media_dim: features per media token.
        every: a gated layer after blocks ``every - 1, 2 * every - 1, ...``.
        latents: latents of the Perceiver Resampler over the media.
        freeze: False trains the transformer too (the same network trained from scratch on both inputs).
    """

    def __init__(self, frozen: SetTransformer, media_dim: int, every: int = 1, latents: int = 16,
                 freeze: bool = True) -> None:
        super().__init__()
        if not 1 <= every <= len(frozen.blocks):
            raise ValueError(f"every must be between 1 and the {len(frozen.blocks)} blocks, got {every}")
        self.frozen = frozen.requires_grad_(not freeze)
        cfg = frozen.cfg
        self.media_in = nn.Linear(media_dim, cfg.dim)
        self.resampler = PerceiverResampler(cfg, latents=latents, layers=1)
        self.gated = nn.ModuleDict({str(i): GatedCrossAttention(cfg) for i in range(every - 1, len(frozen.blocks),
                                                                                     every)})
        self._media: tuple[torch.Tensor, torch.Tensor] | None = None

    @contextlib.contextmanager
    def conditioned(self, media: torch.Tensor, media_mask: torch.Tensor | None = None) -> Iterator[None]:
        """Calls inside the block read ``media [B, M, F]`` (``media_mask [B, M]``: True for real tokens)."""
        mask = torch.ones(media.shape[:2], dtype=torch.bool, device=media.device) if media_mask is None \
            else media_mask
        self._media = (media, mask)
        try:
            yield
        finally:
            self._media = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                route_ids: torch.Tensor | None = None) -> torch.Tensor:
        if self._media is None:
            raise RuntimeError("GatedSetTransformer needs its media: call it inside conditioned(media, mask)")
        media, media_mask = self._media
        has = media_mask.any(1)  # elements without media keep the frozen model's tokens exactly
        safe = media_mask | ~has[:, None]  # (their attention runs on something finite, then is discarded)
        latents = self.resampler(self.media_in(media), safe)
        for i, block in enumerate(self.frozen.blocks):
            x = block(x, mask, bias, route_ids)
            if str(i) in self.gated:
                x = torch.where(has[:, None, None], self.gated[str(i)](x, latents), x)
        return self.frozen.pool(x, mask)


class GatedModel(nn.Module):
    """``base`` (any model with one :class:`SetTransformer` inside), frozen, with gated cross-attention to a new
    modality: ``forward(*args, media, media_mask=None, **kwargs)`` is ``base(*args, **kwargs)`` with the media
    in place. Only the new layers train.

    Args:
        base: the trained model.
        media_dim: features per media token.
        every: a gated layer after every ``every``-th transformer block.
        latents: latents of the media's Perceiver Resampler.
        freeze: False leaves ``base`` trainable and in the mode ``train()`` sets: the same network, trained
            as a whole (from scratch, say).
    """

    def __init__(self, base: nn.Module, media_dim: int, every: int = 1, latents: int = 16,
                 freeze: bool = True) -> None:
        super().__init__()
        found = [(name, module) for name, module in base.named_modules() if isinstance(module, SetTransformer)]
        if len(found) != 1:
            raise ValueError(f"{type(base).__name__} holds {len(found)} SetTransformers; GatedModel needs exactly one")
        name, encoder = found[0]
        self.freeze = freeze
        base.requires_grad_(not freeze)
        self.gates = GatedSetTransformer(encoder, media_dim, every, latents, freeze)
        parent = base.get_submodule(name.rpartition(".")[0]) if "." in name else base
        setattr(parent, name.rpartition(".")[2], self.gates)
        self.base = base
        self.train()

    def train(self, mode: bool = True) -> "GatedModel":
        """The new layers follow ``mode``; a frozen model always evaluates."""
        super().train(mode)
        if not self.freeze:
            return self
        self.base.eval()
        for module in (self.gates.media_in, self.gates.resampler, self.gates.gated):
            module.train(mode)
        return self

    def forward(self, *args, media: torch.Tensor, media_mask: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        with self.gates.conditioned(media, media_mask):
            return self.base(*args, **kwargs)
