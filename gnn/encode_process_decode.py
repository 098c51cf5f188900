"""Encode-process-decode (Battaglia et al. 2018): the one message-passing core of the suite's graph models.

Encoder MLPs lift node features and the features of each edge set to a latent width; ``n_steps``
:class:`gnn.blocks.MultiEdgeInteractionNetwork` blocks with *unshared* weights pass messages over every edge
set (each set its own edge MLP, one node MLP over all of them), with residual connections on nodes and edges;
decoders read out per-node predictions and/or per-edge predictions of the first edge set. GNS (one edge set,
node outputs), MeshGraphNets (mesh and world edges, node outputs), the learned force field and the tracking
edge classifier (edge outputs, messages both ways along each edge) are thin wrappers that build the input
graphs and interpret the outputs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gnn.blocks import EdgeBlock, MultiEdgeInteractionNetwork
from gnn.graph import GraphBatch
from gnn.mlp import MLP


@dataclass
class EncodeProcessDecodeConfig:
    """Widths and depth; defaults are those of GNS (latent 128, two hidden layers, 10 steps).

    Args:
        node_in: node input features.
        edge_in: input features of each edge set (an int: one set).
        node_out: per-node outputs (0: no node decoder).
        edge_out: per-edge outputs of the first edge set (0: no edge decoder).
        latent: width of every MLP and latent vector.
        hidden_layers: hidden layers per MLP.
        n_steps: message-passing steps.
        bidirectional: messages along each edge both ways, the two edge updates averaged (an undirected graph
            stored with one direction per edge, as the tracking hit graphs are).
    """

    node_in: int
    edge_in: int | tuple[int, ...]
    node_out: int = 0
    edge_out: int = 0
    latent: int = 128
    hidden_layers: int = 2
    n_steps: int = 10
    bidirectional: bool = False

    @property
    def edge_sets(self) -> tuple[int, ...]:
        return (self.edge_in,) if isinstance(self.edge_in, int) else tuple(self.edge_in)


class EncodeProcessDecode(nn.Module):
    """``forward(graphs) -> GraphBatch`` with nodes ``[N, node_out]`` and edges ``[E_0, edge_out]`` (the first
    edge set's), from one graph or one per edge set (same nodes ``[N, node_in]``, edges ``[E_k, edge_in[k]]``).
    An output without a decoder is left as its latent."""

    def __init__(self, cfg: EncodeProcessDecodeConfig) -> None:
        super().__init__()
        if not (cfg.node_out or cfg.edge_out):
            raise ValueError("EncodeProcessDecode needs node_out or edge_out")
        self.cfg = cfg
        hidden = (cfg.latent,) * cfg.hidden_layers
        self.node_encoder = MLP(cfg.node_in, hidden, cfg.latent, layer_norm=True)
        self.edge_encoders = nn.ModuleList(MLP(n, hidden, cfg.latent, layer_norm=True) for n in cfg.edge_sets)
        self.processor = nn.ModuleList(
            MultiEdgeInteractionNetwork(cfg.latent, [cfg.latent] * len(cfg.edge_sets), hidden)
            for _ in range(cfg.n_steps))
        self.node_decoder = MLP(cfg.latent, hidden, cfg.node_out) if cfg.node_out else None
        self.edge_decoder = EdgeBlock(MLP(3 * cfg.latent, hidden, cfg.edge_out)) if cfg.edge_out else None

    def forward(self, graphs: GraphBatch | Sequence[GraphBatch]) -> GraphBatch:
        graphs = [graphs] if isinstance(graphs, GraphBatch) else list(graphs)
        if len(graphs) != len(self.edge_encoders) or any(g.edges is None for g in graphs):
            raise ValueError(f"EncodeProcessDecode takes {len(self.edge_encoders)} graph(s) with edge features")
        nodes = self.node_encoder(graphs[0].nodes)
        latent = [g.replace(nodes=nodes, edges=encode(g.edges)) for g, encode in zip(graphs, self.edge_encoders)]
        for block in self.processor:
            update = self._step(block, latent)
            nodes = latent[0].nodes + update[0].nodes
            latent = [g.replace(nodes=nodes, edges=g.edges + u.edges) for g, u in zip(latent, update)]
        out = latent[0]
        if self.edge_decoder is not None:
            out = out.replace(edges=self.edge_decoder(out).edges)
        return out.replace(nodes=self.node_decoder(nodes)) if self.node_decoder is not None else out

    def _step(self, block: MultiEdgeInteractionNetwork, graphs: list[GraphBatch]) -> list[GraphBatch]:
        if not self.cfg.bidirectional:
            return block(graphs)
        doubled = [g.replace(senders=torch.cat([g.senders, g.receivers]), receivers=torch.cat([g.receivers, g.senders]),
                             edges=torch.cat([g.edges, g.edges]), n_edge=2 * g.n_edge) for g in graphs]
        return [g.replace(nodes=u.nodes, edges=0.5 * (u.edges[:g.num_edges] + u.edges[g.num_edges:]))
                for g, u in zip(graphs, block(doubled))]
