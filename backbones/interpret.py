"""Looking inside attention models: recorded attention maps, head ablation and head detectors.

``attention_probe(model)`` is a context manager: inside it every :class:`backbones.attention.CrossAttention`
of ``model`` computes its attention explicitly (softmax of the logits, the same function as the fused
kernel) and records the weights ``[B, heads, N, L]`` of the last forward pass by module name; heads named in
``ablate`` have their outputs (before the output projection) replaced by zeros or by their mean over the batch
and positions. Outside the block the modules run the fused ``scaled_dot_product_attention`` as before: the
probe costs nothing when it is not used.

Head detectors follow TransformerLens's ``detect_head`` ("mul" rule): a head's score for a detection pattern
P is sum(A * P) / sum(A) over the query rows of each sequence, averaged over sequences, where P marks
    previous-token:   the key just before the query,
    duplicate-token:  earlier keys holding the query's token,
    induction:        keys right after an earlier occurrence of the query's token.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from backbones.attention import CrossAttention

ABLATIONS = ("zero", "mean")


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None) \
        -> tuple[torch.Tensor, torch.Tensor]:
    """``scaled_dot_product_attention`` spelled out: ``(output [B, H, N, d], weights [B, H, N, L])``.

    Args:
        q, k, v: ``[B, H, N, d]``, ``[B, H, L, d]``, ``[B, H, L, d]``.
        attn_mask: boolean (True: may attend) or additive, broadcastable to ``[B, H, N, L]``; None: none.
    """
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        logits = logits.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool \
            else logits + attn_mask
    weights = logits.softmax(-1)
    return weights @ v, weights


class _Probe:
    """What a probed CrossAttention calls instead of the fused kernel."""

    def __init__(self, names: Mapping[CrossAttention, str], ablate: Mapping[str, Sequence[int]], mode: str) -> None:
        self.names, self.ablate, self.mode = names, ablate, mode
        self.maps: dict[str, torch.Tensor] = {}

    def __call__(self, module: CrossAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 attn_mask: torch.Tensor | None) -> torch.Tensor:
        out, weights = explicit_attention(q, k, v, attn_mask)
        name = self.names[module]
        self.maps[name] = weights.detach()
        heads = list(self.ablate.get(name, ()))
        if heads:
            out = out.clone()
            out[:, heads] = 0.0 if self.mode == "zero" else out[:, heads].mean(dim=(0, 2), keepdim=True)
        return out


@contextlib.contextmanager
def attention_probe(model: nn.Module, ablate: Mapping[str, Sequence[int]] | None = None, mode: str = "zero") \
        -> Iterator[dict[str, torch.Tensor]]:
    """Record every attention map of ``model`` (and ablate heads) inside the block; see the module docstring.

    Args:
        model: any module holding :class:`CrossAttention` layers.
        ablate: ``{attention module name: [head indices]}`` whose outputs are removed.
        mode: ``zero`` or ``mean`` (the head's output averaged over the batch and positions).

    Yields:
        ``{module name: weights [B, heads, N, L]}`` of the latest forward pass, filled as the model runs.
    """
    if mode not in ABLATIONS:
        raise ValueError(f"mode must be one of {', '.join(ABLATIONS)}, got {mode!r}")
    names = {m: name for name, m in model.named_modules() if isinstance(m, CrossAttention)}
    unknown = sorted(set(ablate or {}) - set(names.values()))
    if unknown:
        raise ValueError(f"no attention module {', '.join(unknown)}; the model has {', '.join(names.values())}")
    for name, heads in (ablate or {}).items():
        module = next(m for m, n in names.items() if n == name)
        if any(not 0 <= h < module.heads for h in heads):
            raise ValueError(f"{name} has {module.heads} heads, asked to ablate {list(heads)}")
    probe = _Probe(names, ablate or {}, mode)
    for module in names:
        module.probe = probe
    try:
        yield probe.maps
    finally:
        for module in names:
            module.probe = None


def detection_pattern(tokens: torch.Tensor, kind: str) -> torch.Tensor:
    """``[B, N, N]`` 0/1 pattern of a head detector on token ids ``[B, N]`` (query rows, key columns).

    Args:
        tokens: integer tokens of each sequence.
        kind: ``previous``, ``duplicate`` or ``induction`` (see the module docstring).
    """
    n = tokens.shape[1]
    earlier = torch.ones(n, n, dtype=torch.bool, device=tokens.device).tril(-1)
    if kind == "previous":
        return torch.ones(n - 1, device=tokens.device).diag(-1).expand(tokens.shape[0], n, n).clone()
    duplicate = (tokens[:, :, None] == tokens[:, None, :]) & earlier
    if kind == "duplicate":
        return duplicate.float()
    if kind == "induction":  # key j is right after an earlier copy (j - 1) of the query's token
        return torch.nn.functional.pad(duplicate[:, :, :-1], (1, 0)).float()
    raise ValueError(f"kind must be previous, duplicate or induction, got {kind!r}")


def head_scores(weights: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """Per-head detector score ``[H]``: sum(A * P) / sum(A) per sequence, averaged over the batch.

    Args:
        weights: attention ``[B, H, N, N]``.
        pattern: ``[B, N, N]`` from :func:`detection_pattern`.
    """
    per_sequence = (weights * pattern[:, None]).sum((-2, -1)) / weights.sum((-2, -1))
    return per_sequence.mean(0)
