r"""Graph network blocks (Battaglia et al. 2018, "Relational inductive biases ...").

One message-passing core, three thin layers on it. An edge update computes a message per edge from its
endpoints, a node update aggregates incoming messages over receivers, a global update pools the graph:

.. math::
    e'_k = \phi^e(e_k, v_{s_k}, v_{r_k}, u), \quad
    v'_i = \phi^v\big(\rho^{e\to v}(\{e'_k : r_k = i\}), v_i, u\big), \quad
    u' = \phi^u\big(\rho^{e\to u}(E'), \rho^{v\to u}(V'), u\big)

Every block takes a :class:`GraphBatch` and returns one, so blocks compose like functions.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from gnn.graph import GraphBatch
from gnn.mlp import MLP, NormedMLP
from gnn.neighbours import knn_graph
from gnn.scatter import Reduce, scatter


def _per_edge_globals(graph: GraphBatch) -> torch.Tensor:
    return graph.globals[graph.edge_graph]


def _per_node_globals(graph: GraphBatch) -> torch.Tensor:
    return graph.globals[graph.node_graph]


class EdgeBlock(nn.Module):
    """``e'_k = phi_e([e_k, v_{s_k}, v_{r_k}, (u)])``: one message per edge.

    ``phi`` is any module on the concatenation ``[E, F]``. When it is an :class:`MLP`, its first layer is
    applied to the concatenation as a sum of per-part products, ``W_e e_k + (W_s V)[s_k] + (W_r V)[r_k] +
    (W_u U)[g_k]``: the node and global parts are multiplied once per node or graph and gathered, not once per
    edge (the "concat trick" of NVIDIA PhysicsNeMo's MeshGraphNet). ``trick=False`` materialises the ``[E, F]``
    concatenation instead (same parameters and result). Measured (``benchmarks/mgn_step.py``): the trick is
    1.5-1.8x faster forward; for one block's forward+backward on random edges the concatenation is 5-7%
    faster, but whole MeshGraphNet training steps are 10-20% faster with the trick, so it is the default.
    """

    def __init__(self, phi: nn.Module, use_globals: bool = False) -> None:
        super().__init__()
        self.phi, self.use_globals = phi, use_globals

    def forward(self, graph: GraphBatch, trick: bool = True) -> GraphBatch:
        parts: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        if graph.edges is not None:
            parts.append((graph.edges, None))
        parts += [(graph.nodes, graph.senders), (graph.nodes, graph.receivers)]
        if self.use_globals:
            parts.append((graph.globals, graph.edge_graph))
        if not (trick and isinstance(self.phi, MLP)):
            return graph.replace(edges=self.phi(torch.cat([x if i is None else x[i] for x, i in parts], dim=-1)))
        first = self.phi[0]
        width = sum(x.shape[1] for x, _ in parts)
        if width != first.in_features:
            raise ValueError(f"edge MLP expects {first.in_features} input features, the graph gives {width}")
        hidden, col = None, 0
        for x, index in parts:  # in-place sums: no autograd node here needs its output
            weight = first.weight[:, col: col + x.shape[1]]
            col += x.shape[1]
            if index is None:
                hidden = torch.addmm(first.bias, x, weight.T)
                continue
            gathered = (x @ weight.T).index_select(0, index)  # backward: index_add_, not index_put_
            hidden = gathered.add_(first.bias) if hidden is None else hidden.add_(gathered)
        for layer in itertools.islice(self.phi, 1, None):
            hidden = layer(hidden)
        return graph.replace(edges=hidden)


class NodeBlock(nn.Module):
    """``v'_i = phi_v([rho({e'_k : r_k = i}), v_i, (u)])``: aggregate incoming messages at receivers."""

    def __init__(self, phi: nn.Module, reduce: Reduce = "sum", use_globals: bool = False) -> None:
        super().__init__()
        self.phi, self.reduce, self.use_globals = phi, reduce, use_globals

    def forward(self, graph: GraphBatch) -> GraphBatch:
        incoming = scatter(graph.edges, graph.receivers, graph.num_nodes, self.reduce)
        parts = [incoming, graph.nodes]
        if self.use_globals:
            parts.append(_per_node_globals(graph))
        return graph.replace(nodes=self.phi(torch.cat(parts, dim=-1)))


class GlobalBlock(nn.Module):
    """``u' = phi_u([rho(E'), rho(V'), u])``: pool edges and nodes per graph."""

    def __init__(self, phi: nn.Module, reduce: Reduce = "sum") -> None:
        super().__init__()
        self.phi, self.reduce = phi, reduce

    def forward(self, graph: GraphBatch) -> GraphBatch:
        parts = [scatter(graph.edges, graph.edge_graph, graph.num_graphs, self.reduce),
                 scatter(graph.nodes, graph.node_graph, graph.num_graphs, self.reduce)]
        if graph.globals is not None:
            parts.append(graph.globals)
        return graph.replace(globals=self.phi(torch.cat(parts, dim=-1)))


class InteractionNetwork(nn.Module):
    """Interaction network (Battaglia et al. 2016): edge update then node update, sum aggregation, no globals.

    Args:
        node_dim, edge_dim: input widths; the block outputs ``node_out`` / ``edge_out`` (default: same).
        hidden: hidden widths of both MLPs; layer_norm: LayerNorm on their outputs (GNS, MeshGraphNets).
    """

    def __init__(self, node_dim: int, edge_dim: int, hidden: Sequence[int] = (128, 128),
                 node_out: int | None = None, edge_out: int | None = None, layer_norm: bool = True,
                 reduce: Reduce = "sum") -> None:
        super().__init__()
        edge_out = edge_out or edge_dim
        self.edge = EdgeBlock(MLP(edge_dim + 2 * node_dim, hidden, edge_out, layer_norm))
        self.node = NodeBlock(MLP(edge_out + node_dim, hidden, node_out or node_dim, layer_norm), reduce)

    def forward(self, graph: GraphBatch) -> GraphBatch:
        return self.node(self.edge(graph))


class MultiEdgeInteractionNetwork(nn.Module):
    """Interaction network over several edge sets on the same nodes (MeshGraphNets' mesh and world edges):
    each set has its own edge MLP; the node MLP sees the node and every set's aggregated messages.

    ``forward(graphs)`` takes one :class:`GraphBatch` per edge set (same nodes) and returns them with the
    new node features and each set's new edge features.
    """

    def __init__(self, node_dim: int, edge_dims: Sequence[int], hidden: Sequence[int] = (128, 128),
                 layer_norm: bool = True, reduce: Reduce = "sum") -> None:
        super().__init__()
        self.edges = nn.ModuleList(EdgeBlock(MLP(dim + 2 * node_dim, hidden, dim, layer_norm)) for dim in edge_dims)
        self.node = MLP(node_dim + sum(edge_dims), hidden, node_dim, layer_norm)
        self.reduce = reduce

    def forward(self, graphs: Sequence[GraphBatch]) -> list[GraphBatch]:
        if len(graphs) != len(self.edges):
            raise ValueError(f"expected {len(self.edges)} edge sets, got {len(graphs)}")
        updated = [block(graph) for block, graph in zip(self.edges, graphs)]
        incoming = [scatter(g.edges, g.receivers, g.num_nodes, self.reduce) for g in updated]
        nodes = self.node(torch.cat([graphs[0].nodes, *incoming], dim=-1))
        return [g.replace(nodes=nodes) for g in updated]


class GraphNetwork(nn.Module):
    """Full GN block: edge, node and global updates, each conditioned on the globals.

    Shapes: nodes ``[N, node_dim]``, edges ``[E, edge_dim]``, globals ``[G, global_dim]`` -> the same widths
    (or ``*_out``).
    """

    def __init__(self, node_dim: int, edge_dim: int, global_dim: int, hidden: Sequence[int] = (128, 128),
                 node_out: int | None = None, edge_out: int | None = None, global_out: int | None = None,
                 layer_norm: bool = False, reduce: Reduce = "sum") -> None:
        super().__init__()
        edge_out, node_out = edge_out or edge_dim, node_out or node_dim
        self.edge = EdgeBlock(MLP(edge_dim + 2 * node_dim + global_dim, hidden, edge_out, layer_norm),
                              use_globals=True)
        self.node = NodeBlock(MLP(edge_out + node_dim + global_dim, hidden, node_out, layer_norm), reduce,
                              use_globals=True)
        self.glob = GlobalBlock(MLP(edge_out + node_out + global_dim, hidden, global_out or global_dim,
                                    layer_norm), reduce)

    def forward(self, graph: GraphBatch) -> GraphBatch:
        if graph.globals is None or graph.edges is None:
            raise ValueError("GraphNetwork needs a graph with edges and globals features")
        return self.glob(self.node(self.edge(graph)))


class EdgeConv(nn.Module):
    r"""EdgeConv (Wang et al. 2019, DGCNN): :math:`x'_i = \rho_{j \in N(i)} h([x_i, x_j - x_i])`.

    With ``k`` set the block is dynamic: it rebuilds the graph as the k nearest neighbours of each node in
    ``coordinates`` (default: the current node features), within each graph of the batch, and returns
    the batch with those edges. With ``k=None`` it uses the batch's own edges.

    Args:
        in_features, out_features: node widths; hidden: hidden widths of h; reduce: "max" (DGCNN) or
        "mean" (ParticleNet); batch_norm: h as ParticleNet's (every layer Linear, BatchNorm over the edges,
        ReLU, the output included) instead of a plain MLP with a linear output.
    """

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = (), k: int | None = None,
                 reduce: Reduce = "max", batch_norm: bool = False) -> None:
        super().__init__()
        self.h = NormedMLP(2 * in_features, [*hidden, out_features]) if batch_norm \
            else MLP(2 * in_features, hidden, out_features)
        self.k, self.reduce = k, reduce

    def forward(self, graph: GraphBatch, coordinates: torch.Tensor | None = None) -> GraphBatch:
        if self.k is not None:
            graph = knn_rewire(graph, self.k, graph.nodes if coordinates is None else coordinates)
        x_i, x_j = graph.nodes[graph.receivers], graph.nodes[graph.senders]
        messages = self.h(torch.cat([x_i, x_j - x_i], dim=-1))
        return graph.replace(nodes=scatter(messages, graph.receivers, graph.num_nodes, self.reduce))


def knn_rewire(graph: GraphBatch, k: int, coordinates: torch.Tensor) -> GraphBatch:
    """The batch with its edges replaced by each node's k nearest neighbours in ``coordinates [N, D]``."""
    senders, receivers = knn_graph(coordinates.detach(), k, batch=graph.node_graph, num_graphs=graph.num_graphs)
    owner = graph.node_graph[receivers]  # counted by index_add, not bincount: its length is not data-dependent
    n_edge = torch.zeros_like(graph.n_node).index_add_(0, owner, torch.ones_like(owner))
    return graph.replace(senders=senders, receivers=receivers, n_edge=n_edge, edges=None)
