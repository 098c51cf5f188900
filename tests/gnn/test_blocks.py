"""Permutation equivariance and gradients of every block."""
import pytest
import torch

from gnn.blocks import EdgeBlock, EdgeConv, GraphNetwork, InteractionNetwork
from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from gnn.mlp import MLP
from tests.conftest import requires_cuda


def random_batch(seed=0, sizes=(5, 7), fn=4, fe=3, fu=2):
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in sizes:
        e = 3 * n
        graphs.append(GraphBatch.single(torch.randn(n, fn, generator=g, dtype=torch.float64),
                                        torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g),
                                        edges=torch.randn(e, fe, generator=g, dtype=torch.float64),
                                        globals=torch.randn(fu, generator=g, dtype=torch.float64)))
    return GraphBatch.collate(graphs)


def permute_nodes(graph, seed=1):
    """Relabel nodes within each graph and shuffle edges within each graph."""
    g = torch.Generator().manual_seed(seed)
    perm_parts, offset = [], 0
    for n in graph.n_node.tolist():
        perm_parts.append(torch.randperm(n, generator=g) + offset)
        offset += n
    perm = torch.cat(perm_parts)  # new node k is old node perm[k]
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    edge_parts, offset = [], 0
    for e in graph.n_edge.tolist():
        edge_parts.append(torch.randperm(e, generator=g) + offset)
        offset += e
    eperm = torch.cat(edge_parts)
    permuted = graph.replace(nodes=graph.nodes[perm], senders=inverse[graph.senders[eperm]],
                             receivers=inverse[graph.receivers[eperm]], edges=graph.edges[eperm])
    return permuted, perm, eperm


def models():
    torch.manual_seed(0)
    return {
        "interaction": InteractionNetwork(4, 3, hidden=(8,), node_out=5, edge_out=6).double(),
        "graph_network": GraphNetwork(4, 3, 2, hidden=(8,), node_out=5, edge_out=6, global_out=3).double(),
        "edgeconv_static": EdgeConv(4, 5, hidden=(8,)).double(),
        "edgeconv_dynamic_mean": EdgeConv(4, 5, hidden=(8,), k=3, reduce="mean").double(),
    }


@pytest.mark.parametrize("name", list(models()))
def test_blocks_are_permutation_equivariant(name):
    block = models()[name]
    graph = random_batch()
    permuted, perm, eperm = permute_nodes(graph)
    out, out_p = block(graph), block(permuted)
    assert torch.allclose(out_p.nodes, out.nodes[perm])
    if name in ("interaction", "graph_network"):
        assert torch.allclose(out_p.edges, out.edges[eperm])
    if name == "graph_network":
        assert torch.allclose(out_p.globals, out.globals)


@pytest.mark.parametrize("name", list(models()))
def test_blocks_pass_gradcheck(name):
    block = models()[name]
    graph = random_batch(sizes=(4, 3))
    nodes = graph.nodes.clone().requires_grad_(True)
    # dynamic kNN indices are piecewise constant in the input: gradcheck holds away from ties
    assert torch.autograd.gradcheck(lambda x: block(graph.replace(nodes=x)).nodes.sum(0), (nodes,))


def test_graphs_in_a_batch_do_not_interact():
    block = models()["graph_network"]
    batch = random_batch(sizes=(5, 7))
    alone = random_batch(sizes=(5, 7))
    first = GraphBatch(nodes=alone.nodes[:5], senders=alone.senders[:15], receivers=alone.receivers[:15],
                       edges=alone.edges[:15], globals=alone.globals[:1], n_node=alone.n_node[:1],
                       n_edge=alone.n_edge[:1])
    assert torch.allclose(block(batch).nodes[:5], block(first).nodes)


def test_encode_process_decode_is_equivariant_and_can_overfit():
    torch.manual_seed(0)
    cfg = EncodeProcessDecodeConfig(node_in=4, edge_in=3, node_out=2, latent=16, n_steps=3)
    model = EncodeProcessDecode(cfg).double()
    graph = random_batch()
    permuted, perm, _ = permute_nodes(graph)
    assert torch.allclose(model(permuted).nodes, model(graph).nodes[perm])
    target = torch.randn(graph.num_nodes, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(graph).nodes, target)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.05 * first
    assert len({id(b) for b in model.processor}) == 3 and model.processor[0].edges[0].phi[0].weight is not \
        model.processor[1].edges[0].phi[0].weight


def test_mlp_layer_norm_is_last():
    mlp = MLP(3, (4, 4), 2, layer_norm=True)
    assert isinstance(mlp[-1], torch.nn.LayerNorm) and mlp(torch.randn(5, 3)).shape == (5, 2)


@requires_cuda
def test_encode_process_decode_on_cuda_matches_cpu():
    torch.manual_seed(0)
    model = EncodeProcessDecode(EncodeProcessDecodeConfig(node_in=4, edge_in=3, node_out=2, latent=16,
                                                          n_steps=2)).double()
    graph = random_batch()
    cpu = model(graph).nodes
    gpu = model.to("cuda")(graph.to("cuda")).nodes
    assert gpu.device.type == "cuda" and torch.allclose(cpu, gpu.cpu())
    gpu.sum().backward()
    dynamic = models()["edgeconv_dynamic_mean"]
    assert torch.allclose(dynamic(graph).nodes, dynamic.to("cuda")(graph.to("cuda")).nodes.cpu())


def test_edge_block_equals_mlp_on_the_concatenation():
    torch.manual_seed(0)
    block = models()["graph_network"].edge
    graph = random_batch()
    direct = block.phi(torch.cat([graph.edges, graph.nodes[graph.senders], graph.nodes[graph.receivers],
                                  graph.globals[graph.edge_graph]], dim=-1))
    assert torch.allclose(block(graph).edges, direct, atol=1e-6)  # the sum of per-part maps
    assert torch.allclose(block(graph, trick=False).edges, direct)


def test_edge_block_takes_any_edge_function():
    """A module that is not an MLP sees the plain concatenation ``[e, v_s, v_r]``."""
    graph = random_batch()

    class Bilinear(torch.nn.Module):
        def forward(self, x):
            return (x[:, :3] * x[:, 3:6] * x[:, 7:10]).sum(-1, keepdim=True)

    edges = EdgeBlock(Bilinear())(graph).edges
    direct = (graph.edges * graph.nodes[graph.senders, :3] * graph.nodes[graph.receivers, :3]).sum(-1, keepdim=True)
    assert torch.allclose(edges, direct)


def test_one_core_serves_several_edge_sets_edge_outputs_and_undirected_graphs():
    """Two edge sets, node and edge decoders, messages both ways: permuting nodes and edges permutes the
    outputs alike; reversing every edge of an undirected (bidirectional) model changes nothing."""
    torch.manual_seed(0)
    model = EncodeProcessDecode(EncodeProcessDecodeConfig(node_in=4, edge_in=(3, 3), node_out=2, edge_out=1,
                                                          latent=8, n_steps=2, bidirectional=True)).double()
    graph = random_batch()
    second = random_batch(seed=5).replace(nodes=graph.nodes)
    out = model([graph, second])
    assert out.nodes.shape == (graph.num_nodes, 2) and out.edges.shape == (len(graph.senders), 1)
    permuted, perm, eperm = permute_nodes(graph)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    second_p = second.replace(nodes=permuted.nodes, senders=inverse[second.senders],
                              receivers=inverse[second.receivers])
    out_p = model([permuted, second_p])
    assert torch.allclose(out_p.nodes, out.nodes[perm]) and torch.allclose(out_p.edges, out.edges[eperm])
    reversed_ = model([graph.replace(senders=graph.receivers, receivers=graph.senders),
                       second.replace(senders=second.receivers, receivers=second.senders)])
    assert torch.allclose(reversed_.nodes, out.nodes)
    with pytest.raises(ValueError, match="2 graph"):
        model(graph)
