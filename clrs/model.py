"""Encode-process-decode over algorithm executions (Velickovic et al. 2022; Ibarz et al. 2022).

At every step the inputs and the current hints are encoded by one linear layer per feature and summed into
node ``[B, N, D]``, edge ``[B, N, N, D]`` and graph ``[B, D]`` features (a pointer becomes an edge feature: the
one-hot or predicted distribution over its targets); the shared processor (``gnn.triplet.TripletGMPNN``) updates
the node latents once; per-feature decoders predict the next step's hints, and after a trajectory's last step,
its outputs. Predicted hints are fed back *soft* (softmax over nodes or classes, sigmoid of masks); with
probability ``teacher_forcing`` an example is fed the true hints instead. Several algorithms share the processor
and keep their own encoders and decoders (the multi-task generalist).
"""
from __future__ import annotations

import torch
from torch import nn

from datasets.clrs import SPECS, Batch, Feature, Location, Stage, Type
from gnn.triplet import NEG, TripletGMPNN


def _width(feature: Feature) -> int:
    return feature.categories if feature.type is Type.CATEGORICAL else 1


def as_input(feature: Feature, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A stored value (index or float) as the network reads it: node ``[B, N, C]``, edge ``[B, N, N, 1]`` or
    graph ``[B, 1]``; a pointer ``[B, N, N, 1]`` (row ``i`` one-hot at its target)."""
    n = mask.shape[1]
    if feature.type in (Type.POINTER, Type.MASK_ONE):
        return nn.functional.one_hot(value, n).float()[..., None]
    if feature.type is Type.CATEGORICAL:
        return nn.functional.one_hot(value, feature.categories).float()
    return value[..., None].float()


def soft(feature: Feature, prediction: torch.Tensor) -> torch.Tensor:
    """A decoder's raw prediction as the network reads a hint (the soft counterpart of :func:`as_input`)."""
    if feature.type in (Type.POINTER, Type.MASK_ONE):
        return torch.softmax(prediction, -1)[..., None]
    if feature.type is Type.CATEGORICAL:
        return torch.softmax(prediction, -1)
    if feature.type is Type.MASK:
        return torch.sigmoid(prediction)[..., None]
    return prediction[..., None]


class Decoder(nn.Module):
    """One feature's prediction from node ``z [B, N, 2D]``, edge ``e [B, N, N, 2D]`` and graph ``g [B, D]``
    latents: node values ``[B, N]`` (categorical ``[B, N, C]``), node-choice logits ``[B, N]`` (``mask_one``),
    pointer logits ``[B, N, N]`` (row: the pointing node) or graph values ``[B]``; padded nodes get ``-1e9``
    wherever they would be chosen."""

    def __init__(self, feature: Feature, dim: int) -> None:
        super().__init__()
        self.feature = feature
        if feature.type is Type.POINTER:
            self.source, self.target = nn.Linear(2 * dim, dim), nn.Linear(2 * dim, dim)
            self.pair, self.out = nn.Linear(2 * dim, dim), nn.Linear(dim, 1)
        elif feature.location is Location.GRAPH:
            self.pooled, self.graph = nn.Linear(2 * dim, 1), nn.Linear(dim, 1)
        else:
            self.out = nn.Linear(2 * dim, _width(feature))

    def forward(self, z: torch.Tensor, e: torch.Tensor, g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        f = self.feature
        if f.type is Type.POINTER:
            pairs = self.source(z)[:, :, None] + self.target(z)[:, None] + self.pair(e)
            return self.out(torch.relu(pairs))[..., 0].masked_fill(~mask[:, None], NEG)
        if f.location is Location.GRAPH:
            pooled = z.masked_fill(~mask[..., None], NEG).amax(1)
            return (self.pooled(pooled) + self.graph(g))[:, 0]
        out = self.out(z)
        if f.type is Type.MASK_ONE:
            return out[..., 0].masked_fill(~mask, NEG)
        return out if f.type is Type.CATEGORICAL else out[..., 0]


class AlgorithmHeads(nn.Module):
    """One algorithm's encoders (inputs and hints) and decoders (hints and outputs)."""

    def __init__(self, algorithm: str, dim: int) -> None:
        super().__init__()
        spec = SPECS[algorithm]
        self.spec = spec
        self.encoders = nn.ModuleDict({name: nn.Linear(_width(f), dim) for name, f in spec.items()
                                       if f.stage is not Stage.OUTPUT})
        for name, f in spec.items():
            if f.stage is not Stage.OUTPUT and f.type is Type.SCALAR:
                nn.init.xavier_uniform_(self.encoders[name].weight)   # Ibarz et al.'s xavier_on_scalars
        self.decoders = nn.ModuleDict({name: Decoder(f, dim) for name, f in spec.items()
                                       if f.stage is not Stage.INPUT})

    def encode(self, values: dict[str, torch.Tensor], base: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Add the encodings of ``values`` (already in :func:`as_input` form) to ``base``.

        Args:
            values: features by name.
            base: node ``[B, N, D]``, edge ``[B, N, N, D]`` and graph ``[B, D]`` features to add to.
        """
        node, edge, graph = base
        for name, x in values.items():
            f, encoded = self.spec[name], self.encoders[name](x)
            if f.type is Type.POINTER or f.location is Location.EDGE:
                edge = edge + encoded
            elif f.location is Location.GRAPH:
                graph = graph + encoded
            else:
                node = node + encoded
        return node, edge, graph


class ClrsNet(nn.Module):
    """Encode-process-decode with hints for one or several algorithms sharing the processor.

    Args:
        algorithms: keys of ``datasets.clrs.SPECS``.
        dim: latent width (128 in the paper).
        triplet_dim: triplet message width (8).
        teacher_forcing: probability that an example is fed the true hints at a training step (0 in Ibarz et
            al.; the first CLRS baselines used 0.5).
    """

    def __init__(self, algorithms: tuple[str, ...], dim: int = 128, triplet_dim: int = 8,
                 teacher_forcing: float = 0.0) -> None:
        super().__init__()
        self.dim, self.teacher_forcing = dim, teacher_forcing
        self.heads = nn.ModuleDict({a: AlgorithmHeads(a, dim) for a in algorithms})
        self.processor = TripletGMPNN(dim, triplet_dim)

    def forward(self, batch: Batch, keep_hints: bool = True
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Run every execution of ``batch`` for its own number of steps.

        Args:
            batch: executions of one algorithm.
            keep_hints: return the hint predictions (the losses need them; scoring does not, and keeping a
                few small tensors per step between the large per-step temporaries fragments the heap that
                ``training.allocator.retain_freed_memory`` keeps: 3.4 instead of 1.1 GB on 64-node DFS).

        Returns:
            ``(outputs, hints)``: raw predictions of each output feature (see :class:`Decoder`), and of each
            hint at steps 1..T-1 stacked as ``[B, T - 1, ...]`` (step ``t``'s prediction of hint ``t + 1``;
            empty without ``keep_hints``).
        """
        heads = self.heads[batch.algorithm]
        spec, mask = heads.spec, batch.node_mask
        b, n = mask.shape
        steps = max(1, int(batch.lengths.max()) - 1)
        inputs = {k: as_input(spec[k], v, mask) for k, v in batch.inputs.items()}
        zeros = tuple(torch.zeros(*shape, device=mask.device)
                      for shape in ((b, n, self.dim), (b, n, n, self.dim), (b, self.dim)))
        encoded_inputs = heads.encode(inputs, zeros)
        hints = {k: as_input(spec[k], v[:, 0], mask) for k, v in batch.hints.items()}
        hidden = torch.zeros(b, n, self.dim, device=mask.device)
        last = None
        predicted: dict[str, list[torch.Tensor]] | None = {k: [] for k in batch.hints} if keep_hints else None
        for t in range(steps):
            node, edge, graph = heads.encode(hints, encoded_inputs)
            new_hidden, tri = self.processor(node, edge, graph, hidden, mask)
            z, e = torch.cat([node, new_hidden], -1), torch.cat([edge, tri], -1)
            active = (t < batch.lengths - 1) | (t == 0)   # an execution of one state still takes one step
            hidden = _where(active, new_hidden, hidden)
            last = (z, e, graph) if last is None else tuple(_where(active, new, old)
                                                            for new, old in zip((z, e, graph), last))
            if t + 1 < int(batch.lengths.max()):
                hints = self._next_hints(heads, z, e, graph, mask, batch, t + 1, predicted)
        outputs = {name: heads.decoders[name](*last, mask) for name, f in spec.items() if f.stage is Stage.OUTPUT}
        return outputs, {k: torch.stack(v, 1) for k, v in (predicted or {}).items() if v}

    def _next_hints(self, heads: AlgorithmHeads, z: torch.Tensor, e: torch.Tensor, g: torch.Tensor,
                    mask: torch.Tensor, batch: Batch, t: int, predicted: dict[str, list[torch.Tensor]] | None
                    ) -> dict[str, torch.Tensor]:
        """Decode hint ``t``, record the predictions (unless ``predicted`` is None) and return what the next
        step reads."""
        forced = None
        if self.training and self.teacher_forcing > 0:
            forced = torch.rand(len(mask), device=mask.device) < self.teacher_forcing
        fed = {}
        for name in batch.hints:
            f = heads.spec[name]
            raw = heads.decoders[name](z, e, g, mask)
            if predicted is not None:
                predicted[name].append(raw)
            fed[name] = soft(f, raw)
            if forced is not None:
                fed[name] = _where(forced, as_input(f, batch.hints[name][:, t], mask), fed[name])
        return fed


def _where(rows: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` where ``rows [B]`` is true, else ``old``."""
    return torch.where(rows.view(-1, *[1] * (new.dim() - 1)), new, old)
