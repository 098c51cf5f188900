"""Encode-process-decode (Battaglia et al. 2018; the core of GNS and MeshGraphNets).

Encoder MLPs lift node and edge features to a latent width, ``n_steps`` interaction networks with
*unshared* weights pass messages with residual connections on nodes and edges, and a decoder MLP (no
LayerNorm) reads out a per-node prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gnn.blocks import InteractionNetwork
from gnn.graph import GraphBatch
from gnn.mlp import MLP


@dataclass
class EncodeProcessDecodeConfig:
    """Widths and depth; defaults are those of GNS (latent 128, two hidden layers, 10 steps)."""

    node_in: int
    edge_in: int
    node_out: int
    latent: int = 128
    hidden_layers: int = 2
    n_steps: int = 10


class EncodeProcessDecode(nn.Module):
    """Per-node predictions ``[N, node_out]`` from a graph with nodes ``[N, node_in]``, edges ``[E, edge_in]``."""

    def __init__(self, cfg: EncodeProcessDecodeConfig) -> None:
        super().__init__()
        hidden = (cfg.latent,) * cfg.hidden_layers
        self.node_encoder = MLP(cfg.node_in, hidden, cfg.latent, layer_norm=True)
        self.edge_encoder = MLP(cfg.edge_in, hidden, cfg.latent, layer_norm=True)
        self.processor = nn.ModuleList(
            InteractionNetwork(cfg.latent, cfg.latent, hidden, layer_norm=True) for _ in range(cfg.n_steps))
        self.decoder = MLP(cfg.latent, hidden, cfg.node_out)

    def forward(self, graph: GraphBatch) -> torch.Tensor:
        if graph.edges is None:
            raise ValueError("EncodeProcessDecode needs edge features (graph.edges is None)")
        latent = graph.replace(nodes=self.node_encoder(graph.nodes), edges=self.edge_encoder(graph.edges))
        for block in self.processor:
            update = block(latent)
            latent = latent.replace(nodes=latent.nodes + update.nodes, edges=latent.edges + update.edges)
        return self.decoder(latent.nodes)
