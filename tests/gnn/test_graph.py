import pytest
import torch

from gnn.graph import GraphBatch


def _graph(n, senders, receivers, f=2):
    return GraphBatch.single(torch.arange(n * f, dtype=torch.float32).view(n, f), torch.tensor(senders),
                             torch.tensor(receivers), edges=torch.ones(len(senders), 1), globals=torch.ones(3))


def test_collate_offsets_edges_and_indexes_graphs():
    a, b = _graph(2, [0], [1]), _graph(3, [0, 2], [1, 1])
    batch = GraphBatch.collate([a, b])
    assert batch.num_graphs == 2 and batch.num_nodes == 5 and batch.num_edges == 3
    assert batch.senders.tolist() == [0, 2, 4] and batch.receivers.tolist() == [1, 3, 3]
    assert batch.node_graph.tolist() == [0, 0, 1, 1, 1] and batch.edge_graph.tolist() == [0, 1, 1]
    assert batch.globals.shape == (2, 3)
    nested = GraphBatch.collate([batch, a])
    assert nested.senders.tolist() == [0, 2, 4, 5] and nested.num_graphs == 3


def test_collate_rejects_mixed_optional_fields_and_bad_shapes():
    a = _graph(2, [0], [1])
    with pytest.raises(ValueError, match="edges"):
        GraphBatch.collate([a, a.replace(edges=None)])
    with pytest.raises(ValueError, match="senders"):
        a.replace(senders=torch.zeros(3, dtype=torch.long))


def test_to_moves_every_tensor():
    moved = _graph(2, [0], [1]).to("meta")
    assert all(t.device.type == "meta" for t in (moved.nodes, moved.senders, moved.globals, moved.n_node))
