import pytest
import torch

from gnn.interop import from_pyg, to_pyg
from gnn.scatter import scatter
from tests.gnn.test_blocks import random_batch

pyg_nn = pytest.importorskip("torch_geometric.nn")


def test_round_trip_is_exact():
    graph = random_batch()
    back = from_pyg(to_pyg(graph))
    for name in ("nodes", "senders", "receivers", "edges", "globals", "n_node", "n_edge"):
        assert torch.equal(getattr(back, name), getattr(graph, name)), name


def test_pyg_layer_runs_on_our_batch_and_agrees_with_our_aggregation():
    graph = random_batch()
    data = to_pyg(graph)
    conv = pyg_nn.SimpleConv(aggr="sum")  # out_i = sum over edges j -> i of x_j
    expected = scatter(graph.nodes[graph.senders], graph.receivers, graph.num_nodes, "sum")
    assert torch.allclose(conv(data.x, data.edge_index), expected)
    pooled = pyg_nn.global_mean_pool(data.x, data.batch)
    assert torch.allclose(pooled, scatter(graph.nodes, graph.node_graph, graph.num_graphs, "mean"))
