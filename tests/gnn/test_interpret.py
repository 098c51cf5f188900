import pytest
import torch

from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from gnn.interpret import ablate_steps, record_messages


def net_and_graph():
    torch.manual_seed(0)
    net = EncodeProcessDecode(EncodeProcessDecodeConfig(node_in=3, edge_in=2, node_out=2, latent=8, n_steps=3))
    senders, receivers = torch.randint(0, 6, (2, 15))
    graph = GraphBatch(nodes=torch.randn(6, 3), edges=torch.randn(15, 2), senders=senders, receivers=receivers,
                       n_node=torch.tensor([6]), n_edge=torch.tensor([15]))
    return net.eval(), graph


def test_messages_of_every_step_are_recorded_and_the_output_is_unchanged():
    net, graph = net_and_graph()
    plain = net(graph).nodes
    with record_messages(net) as messages:
        recorded = net(graph).nodes
    assert torch.equal(plain, recorded)
    assert sorted(messages) == [f"processor.{i}.edges.0" for i in range(3)]
    assert all(len(m) == 1 and m[0].shape == (15, 8) for m in messages.values())
    net(graph)
    assert all(len(m) == 1 for m in messages.values())  # the hooks are gone after the block


def test_ablating_every_step_leaves_encoder_then_decoder_and_hooks_are_removed():
    net, graph = net_and_graph()
    plain = net(graph).nodes
    with torch.no_grad(), ablate_steps(net, [0, 1, 2]):
        skipped = net(graph).nodes
    assert torch.allclose(skipped, net.node_decoder(net.node_encoder(graph.nodes)))
    with ablate_steps(net, [1]):
        one = net(graph).nodes
    assert not torch.allclose(one, plain) and not torch.allclose(one, skipped)
    assert torch.equal(net(graph).nodes, plain)
    with pytest.raises(ValueError, match="3 steps"):
        with ablate_steps(net, [3]):
            pass
