"""Jet taggers on the shared parts: ``forward(JetBatch) -> logits [B, 2]``, invariant to the order of the
constituents and blind to padding.

- Particle Flow Network (Komiske et al. 2019): per-particle MLP, masked sum, MLP: the deep-sets baseline.
- ParticleNet (Qu & Gouskos 2020), as weaver-core builds it: EdgeConv blocks (``gnn.blocks.EdgeConv``, every
  edge layer Linear-BatchNorm-ReLU, mean aggregation, a Linear-BatchNorm shortcut, ReLU of the sum) on k
  nearest neighbours in (d_eta, d_phi), then in feature space; a fusion layer over the concatenated block
  outputs; global average pooling; FC with dropout. ``lite`` is ParticleNet-Lite (k = 7, blocks of 32 and
  64). Batch statistics cover the real particles and their edges only.
- Particle Transformer (Qu, Li & Qian 2022): particle embedding, pair features of real pairs embedded to one
  attention bias per head, shared by the layers; ``backbones.transformer.SetTransformer`` (blocks + class
  attention).
- Perceiver tagger: particle embedding into ``backbones.perceiver.PerceiverIO``: cost N x M, not N^2.
- Vertex tagger: ParT plus Flamingo's gated cross-attention to the jet's tracks and secondary vertices.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from backbones.gated_cross_attention import GatedModel
from backbones.perceiver import PerceiverIO
from backbones.routing import RouterConfig
from backbones.transformer import SetTransformer, TransformerConfig
from gnn.blocks import EdgeConv
from gnn.graph import GraphBatch
from gnn.mlp import MLP, NormedMLP
from gnn.scatter import scatter
from hep.jets.inputs import JetBatch, real_pairs

N_FEATURES = 7


class MaskedBatchNorm(nn.Module):
    """Per-feature standardisation of ``[B, C, L]`` over the real particles only (padding never enters the
    statistics), with running statistics for evaluation, as BatchNorm on ParticleNet's inputs."""

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training and bool(mask.any()):  # (a batch without any real element keeps the running ones)
            real = x.transpose(1, 2)[mask]  # [N_real, C]
            mean, var = real.mean(0), real.var(0, unbiased=False)
            with torch.no_grad():
                self.mean.lerp_(mean.to(self.mean.dtype), self.momentum)
                self.var.lerp_(var.to(self.var.dtype), self.momentum)
        else:
            mean, var = self.mean, self.var
        return ((x - mean[:, None]) / (var[:, None] + self.eps).sqrt()) * mask[:, None, :]


class ParticleFlowNetwork(nn.Module):
    def __init__(self, phi: Sequence[int] = (100, 100, 128), f: Sequence[int] = (100, 100)) -> None:
        super().__init__()
        self.norm = MaskedBatchNorm(N_FEATURES)
        self.phi = MLP(N_FEATURES, phi[:-1], phi[-1])
        self.f = MLP(phi[-1], f, 2)

    def forward(self, jets: JetBatch) -> torch.Tensor:
        per_particle = torch.relu(self.phi(self.norm(jets.features, jets.mask).transpose(1, 2)))
        return self.f((per_particle * jets.mask[..., None]).sum(1))


class ParticleNet(nn.Module):
    """Full: k = 16, blocks (64,64,64), (128,128,128), (256,256,256), fusion 384, FC 256; lite: k = 7, (32,)*3,
    (64,)*3, fusion 128, FC 128. ``width``: the last block's channels (each earlier block half the next), for
    smaller or larger networks of the same shape (None: 64 lite, 256 full)."""

    def __init__(self, lite: bool = False, dropout: float = 0.1, width: int | None = None) -> None:
        super().__init__()
        k, fc, depth = (7, 128, 2) if lite else (16, 256, 3)
        width = width or (64 if lite else 256)
        if width < 2 ** depth:
            raise ValueError(f"ParticleNet width must be at least {2 ** depth}, got {width}")
        blocks = tuple((width // 2 ** (depth - 1 - i),) * 3 for i in range(depth))
        self.input_norm = MaskedBatchNorm(N_FEATURES)
        self.convs, self.shortcuts = nn.ModuleList(), nn.ModuleList()
        width = N_FEATURES
        for channels in blocks:
            self.convs.append(EdgeConv(width, channels[-1], hidden=channels[:-1], k=k, reduce="mean",
                                       batch_norm=True))
            self.shortcuts.append(nn.Sequential(nn.Linear(width, channels[-1], bias=False),
                                                nn.BatchNorm1d(channels[-1])))
            width = channels[-1]
        concatenated = sum(channels[-1] for channels in blocks)
        self.fusion = NormedMLP(concatenated, [min(max(concatenated // 128 * 128, 128), 1024)])
        self.head = nn.Sequential(nn.Linear(self.fusion[0].out_features, fc), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(fc, 2))

    def forward(self, jets: JetBatch) -> torch.Tensor:
        graph, points = _as_graph(jets, self.input_norm(jets.features, jets.mask).transpose(1, 2))
        coordinates, outputs = points, []
        for conv, shortcut in zip(self.convs, self.shortcuts):
            out = conv(graph, coordinates)
            nodes = torch.relu(out.nodes + shortcut(graph.nodes))
            graph = out.replace(nodes=nodes)
            coordinates = nodes  # later blocks find neighbours in feature space
            outputs.append(nodes)
        fused = self.fusion(torch.cat(outputs, dim=-1))
        return self.head(scatter(fused, graph.node_graph, graph.num_graphs, "mean"))


def _as_graph(jets: JetBatch, per_particle: torch.Tensor) -> tuple[GraphBatch, torch.Tensor]:
    """The real particles of every jet as one flat batch of edgeless graphs, and their (d_eta, d_phi)."""
    mask = jets.mask
    nodes = per_particle[mask]
    if torch.compiler.is_exporting():
        torch._check(nodes.shape[0] > 0)  # the exported graph assumes a batch with at least one particle
    points = jets.points.transpose(1, 2)[mask]
    empty = torch.empty(0, dtype=torch.long, device=nodes.device)
    n_node = mask.sum(1)
    graph = GraphBatch(nodes=nodes, senders=empty, receivers=empty, n_node=n_node,
                       n_edge=torch.zeros_like(n_node))
    return graph, points


class ParticleTransformer(nn.Module):
    """``small``: 64 wide, 4 heads, 4 + 1 blocks (for CPUs); full: 128, 8 heads, 8 + 2 blocks, MLP 512.
    ``moe``: routed MLPs in every ``moe.every``-th block (same active parameters per particle as the dense
    model with top-1 routers); hash routing hashes each particle's rank in pT. ``width``: another width
    (scaling sweeps)."""

    def __init__(self, small: bool = True, dropout: float = 0.1, moe: RouterConfig | None = None,
                 width: int | None = None) -> None:
        super().__init__()
        self.cfg = TransformerConfig(dim=64, heads=4, mlp_dim=256, depth=4, class_depth=1, dropout=dropout,
                                     moe=moe) if small else \
            TransformerConfig(dim=128, heads=8, mlp_dim=512, depth=8, class_depth=2, dropout=dropout, moe=moe)
        if width is not None:  # scaling sweeps: one head per 16 channels, MLP 4 x width
            self.cfg = dataclasses.replace(self.cfg, dim=width, heads=max(1, width // 16), mlp_dim=4 * width)
        self.norm, self.pair_norm = MaskedBatchNorm(N_FEATURES), nn.BatchNorm1d(4)
        self.embed = MLP(N_FEATURES, [self.cfg.dim], self.cfg.dim)
        self.pair_embed = MLP(4, [64, 64], self.cfg.heads)
        self.encoder = SetTransformer(self.cfg)
        self.head = nn.Linear(self.cfg.dim, 2)

    def forward(self, jets: JetBatch) -> torch.Tensor:
        x = self.embed(self.norm(jets.features, jets.mask).transpose(1, 2))
        ids = pt_rank(jets) if self.cfg.moe is not None and self.cfg.moe.router == "hash" else None
        return self.head(self.encoder(x, jets.mask, self.pair_bias(jets), ids))

    def pair_bias(self, jets: JetBatch) -> torch.Tensor:
        """``[B, heads, L, L]`` attention bias embedded from the pair features of real pairs only (about a tenth
        of the padded L^2 for 128-long jets of ~50 particles); self-pairs and padding get 0."""
        index, pairs = real_pairs(jets.vectors, jets.mask)
        if torch.compiler.is_exporting():
            torch._check(pairs.shape[0] > 0)  # the exported graph assumes a batch with at least one pair
        embedded = self.pair_embed(self.pair_norm(pairs))
        jet, i, j = index
        size = jets.mask.shape[1]
        bias = embedded.new_zeros(jets.mask.shape[0], size, size, self.cfg.heads)
        return bias.index_put((jet, i, j), embedded).index_put((jet, j, i), embedded).permute(0, 3, 1, 2)


def pt_rank(jets: JetBatch) -> torch.Tensor:
    """Each particle's rank in transverse momentum within its jet ``[B, L]`` (0: the hardest; padding after
    every real particle): a per-particle feature, so it moves with the particle when the set is reordered."""
    pt = torch.hypot(jets.vectors[:, 0], jets.vectors[:, 1]).masked_fill(~jets.mask, -1.0)
    return pt.argsort(1, descending=True, stable=True).argsort(1)


class PerceiverTagger(nn.Module):
    def __init__(self, latents: int = 32, dim: int = 64, depth: int = 2) -> None:
        super().__init__()
        cfg = TransformerConfig(dim=dim, heads=4, mlp_dim=4 * dim, depth=depth, class_depth=0, dropout=0.1)
        self.norm = MaskedBatchNorm(N_FEATURES)
        self.embed = MLP(N_FEATURES, [dim], dim)
        self.perceiver = PerceiverIO(dim, cfg, latents=latents, outputs=1)
        self.head = nn.Linear(dim, 2)

    def forward(self, jets: JetBatch) -> torch.Tensor:
        x = self.embed(self.norm(jets.features, jets.mask).transpose(1, 2))
        return self.head(self.perceiver(x, jets.mask)[:, 0])


TRACK_FEATURES, VERTEX_FEATURES = 6, 7  # trk_features and sv_features of hep/jets/vertices.yaml


class VertexTagger(nn.Module):
    """A Particle Transformer that also reads the jet's tracks and secondary vertices through Flamingo's gated
    cross-attention (:class:`backbones.gated_cross_attention.GatedModel`): every charged constituent becomes a
    media token of its kinematics and impact parameters, every vertex one of its flight distances and track
    kinematics (each type standardised and embedded on its own); the transformer's tokens attend to them after
    every ``every``-th block through gates that start at 0.

    Args:
        base: the ParT. ``freeze`` True (``part-flamingo``): a trained kinematics-only tagger, frozen, whose
            output the new layers can only add to; False (``part-flamingo-scratch``): the same network trained
            as a whole.
        every: a gated layer after every ``every``-th block.
    """

    def __init__(self, base: ParticleTransformer, freeze: bool = True, every: int = 1) -> None:
        super().__init__()
        dim = base.cfg.dim
        self.track_norm = MaskedBatchNorm(N_FEATURES + TRACK_FEATURES)
        self.vertex_norm = MaskedBatchNorm(VERTEX_FEATURES)
        self.track_embed = MLP(N_FEATURES + TRACK_FEATURES, [dim], dim)
        self.vertex_embed = MLP(VERTEX_FEATURES, [dim], dim)
        self.gated = GatedModel(base, dim, every=every, freeze=freeze)

    def forward(self, jets: JetBatch) -> torch.Tensor:
        if jets.tracks is None or jets.vertices is None:
            raise ValueError("this tagger reads tracks and vertices: load the jets with the data config "
                             "hep/jets/vertices.yaml (files written by `physml data generate jets` have them)")
        track_mask = jets.mask & (jets.tracks[:, 0] != 0)  # charged constituents (channel 0: the charge)
        tracks = self.track_norm(torch.cat([jets.features, jets.tracks], 1), track_mask).transpose(1, 2)
        vertices = self.vertex_norm(jets.vertices, jets.vertex_mask).transpose(1, 2)
        media = torch.cat([self.track_embed(tracks), self.vertex_embed(vertices)], 1)
        return self.gated(jets, media=media, media_mask=torch.cat([track_mask, jets.vertex_mask], 1))


MODELS = {"pfn": ParticleFlowNetwork, "particlenet": ParticleNet, "particlenet-lite": lambda: ParticleNet(lite=True),
          "part": ParticleTransformer, "part-full": lambda: ParticleTransformer(small=False),
          "part-moe": lambda: ParticleTransformer(moe=RouterConfig()),
          "perceiver": PerceiverTagger, "part-flamingo": lambda: VertexTagger(ParticleTransformer()),
          "part-flamingo-scratch": lambda: VertexTagger(ParticleTransformer(), freeze=False)}
MEDIA_MODELS = ("part-flamingo", "part-flamingo-scratch")  # they read hep/jets/vertices.yaml
