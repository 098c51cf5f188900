"""The graph batch: one immutable tuple of tensors that every block takes and returns.

Variable-size graphs are concatenated into one flat graph (as in DeepMind's graph_nets and PyG):
nodes of graph g follow those of graph g-1, and edge endpoints are offset accordingly.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch


@dataclasses.dataclass(frozen=True)
class GraphBatch:
    """A batch of directed graphs flattened into one.

    Shapes:
        nodes ``[N, F_v]``; edges ``[E, F_e]`` or None; senders, receivers ``[E]`` int64 (edge j -> i has
        sender j, receiver i); globals ``[G, F_u]`` or None; n_node, n_edge ``[G]`` int64 per-graph counts.
    """

    nodes: torch.Tensor
    senders: torch.Tensor
    receivers: torch.Tensor
    n_node: torch.Tensor
    n_edge: torch.Tensor
    edges: torch.Tensor | None = None
    globals: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.senders.shape != self.receivers.shape or self.senders.dim() != 1:
            raise ValueError(f"senders {tuple(self.senders.shape)} and receivers "
                             f"{tuple(self.receivers.shape)} must be equal 1-D shapes [E]")
        if self.edges is not None and self.edges.shape[0] != self.senders.shape[0]:
            raise ValueError(f"edges has {self.edges.shape[0]} rows but there are {self.senders.shape[0]} edges")
        if self.n_node.shape != self.n_edge.shape:
            raise ValueError("n_node and n_edge must both be [G]")

    @classmethod
    def single(cls, nodes: torch.Tensor, senders: torch.Tensor, receivers: torch.Tensor,
               edges: torch.Tensor | None = None, globals: torch.Tensor | None = None) -> "GraphBatch":
        """One graph as a batch of size 1 (``globals`` ``[F_u]`` or ``[1, F_u]``)."""
        dev = nodes.device
        return cls(nodes=nodes, senders=senders.long(), receivers=receivers.long(),
                   n_node=torch.full((1,), nodes.shape[0], dtype=torch.long, device=dev),  # sizes stay symbolic
                   n_edge=torch.full((1,), senders.shape[0], dtype=torch.long, device=dev),  # when exported
                   edges=edges, globals=None if globals is None else globals.reshape(1, -1))

    @classmethod
    def collate(cls, graphs: Sequence["GraphBatch"]) -> "GraphBatch":
        """Concatenate batches into one, offsetting edge endpoints by the nodes before them."""
        if not graphs:
            raise ValueError("cannot collate an empty list of graphs")
        counts = torch.stack([g.n_node.sum() for g in graphs])
        offsets = torch.cumsum(counts, 0) - counts
        n_edges = [g.senders.shape[0] for g in graphs]
        shift = torch.repeat_interleave(offsets, torch.tensor(n_edges, device=offsets.device))

        def cat(name: str) -> torch.Tensor | None:
            parts = [getattr(g, name) for g in graphs]
            if all(p is None for p in parts):
                return None
            if any(p is None for p in parts):
                raise ValueError(f"cannot collate: field {name!r} is set in some graphs and None in others")
            return torch.cat(parts)

        return cls(nodes=cat("nodes"), edges=cat("edges"), globals=cat("globals"),
                   senders=torch.cat([g.senders for g in graphs]) + shift,
                   receivers=torch.cat([g.receivers for g in graphs]) + shift,
                   n_node=torch.cat([g.n_node for g in graphs]), n_edge=torch.cat([g.n_edge for g in graphs]))

    @property
    def num_nodes(self) -> int:
        return self.nodes.shape[0]

    @property
    def num_edges(self) -> int:
        return self.senders.shape[0]

    @property
    def num_graphs(self) -> int:
        return self.n_node.shape[0]

    @property
    def node_graph(self) -> torch.Tensor:
        """Graph index of every node ``[N]`` (PyG's ``batch``)."""
        return torch.repeat_interleave(torch.arange(self.num_graphs, device=self.n_node.device), self.n_node)

    @property
    def edge_graph(self) -> torch.Tensor:
        """Graph index of every edge ``[E]``."""
        return torch.repeat_interleave(torch.arange(self.num_graphs, device=self.n_edge.device), self.n_edge)

    def replace(self, **fields: torch.Tensor | None) -> "GraphBatch":
        """A copy with some fields replaced (the batch itself is immutable)."""
        return dataclasses.replace(self, **fields)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "GraphBatch":
        """The same batch on ``device``."""
        moved = {f.name: None if (v := getattr(self, f.name)) is None else v.to(device, non_blocking=non_blocking)
                 for f in dataclasses.fields(self)}
        return GraphBatch(**moved)
