"""Conversion to and from PyTorch Geometric's ``Batch`` (optional extra ``pyg``).

PyG stores edges as ``edge_index [2, E]`` with row 0 the source (our sender) and row 1 the target
(our receiver), node features as ``x``, edge features as ``edge_attr`` and the graph index as ``batch``.
Globals travel as ``u`` (one row per graph), as in PyG's MetaLayer.
"""
from __future__ import annotations

import torch

from gnn.graph import GraphBatch
from gnn.optional import require


def to_pyg(graph: GraphBatch):
    """A ``torch_geometric.data.Batch`` holding the same graphs (shares the tensors, no copy)."""
    pyg_data = require("torch_geometric").data
    ptr = torch.cat([graph.n_node.new_zeros(1), torch.cumsum(graph.n_node, 0)])
    fields = {"x": graph.nodes, "edge_index": torch.stack([graph.senders, graph.receivers]),
              "batch": graph.node_graph, "ptr": ptr}
    if graph.edges is not None:
        fields["edge_attr"] = graph.edges
    if graph.globals is not None:
        fields["u"] = graph.globals
    batch = pyg_data.Batch(**fields)
    batch._num_graphs = graph.num_graphs
    return batch


def from_pyg(data) -> GraphBatch:
    """A :class:`GraphBatch` from a PyG ``Data`` or ``Batch`` (``x`` and ``edge_index`` required)."""
    if getattr(data, "x", None) is None or getattr(data, "edge_index", None) is None:
        raise ValueError("from_pyg needs a PyG Data/Batch with 'x' and 'edge_index'")
    n = data.x.shape[0]
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=data.x.device)
    num_graphs = int(batch.max()) + 1 if n else 1
    senders, receivers = data.edge_index[0].long(), data.edge_index[1].long()
    if n and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("from_pyg needs nodes ordered by graph (PyG's Batch always is)")
    order = torch.argsort(batch[receivers], stable=True) if receivers.numel() else receivers
    edges = getattr(data, "edge_attr", None)
    return GraphBatch(nodes=data.x, senders=senders[order], receivers=receivers[order],
                      edges=None if edges is None else edges[order], globals=getattr(data, "u", None),
                      n_node=torch.bincount(batch, minlength=num_graphs),
                      n_edge=torch.bincount(batch[receivers], minlength=num_graphs))
