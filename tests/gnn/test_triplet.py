"""The triplet-GMPNN step against a loop over node pairs and triples, and its symmetries: padded nodes change
nothing, relabelling the nodes relabels the outputs."""
import torch

from gnn.triplet import TripletGMPNN


def inputs(b=2, n=5, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, n, dim, generator=g), torch.randn(b, n, n, dim, generator=g),
            torch.randn(b, dim, generator=g), torch.randn(b, n, dim, generator=g))


def test_step_equals_a_loop_over_senders_and_triples():
    torch.manual_seed(0)
    net = TripletGMPNN(8, triplet_dim=4).double()
    node, edge, graph, hidden = (x.double() for x in inputs(b=1, n=4))
    mask = torch.ones(1, 4, dtype=torch.bool)
    out, tri = net(node, edge, graph, hidden, mask)
    z = torch.cat([node, hidden], -1)[0]
    e, g, h = edge[0], graph[0], hidden[0]
    for y in range(4):
        messages = [net.message(net.send(z[x]) + net.receive(z[y]) + net.edge(e[x, y]) + net.graph(g))
                    for x in range(4)]
        pooled = torch.stack(messages).amax(0)
        update = net.norm(torch.relu(net.own(z[y]) + net.aggregated(pooled)))
        g1, g2, g3 = net.gate
        s = torch.sigmoid(g3(torch.relu(g1(z[y]) + g2(pooled))))
        torch.testing.assert_close(out[0, y], s * update + (1 - s) * h[y])
    t_nodes, t_edges = net.tri_nodes, net.tri_edges
    for j in range(4):
        for k in range(4):
            t = torch.stack([t_nodes[0](z[i]) + t_nodes[1](z[j]) + t_nodes[2](z[k]) + t_edges[0](e[i, j])
                             + t_edges[1](e[i, k]) + t_edges[2](e[j, k]) + net.tri_graph(g) for i in range(4)])
            torch.testing.assert_close(tri[0, j, k], torch.relu(net.tri_out(t.amax(0))))


def test_padded_nodes_change_nothing():
    torch.manual_seed(1)
    net = TripletGMPNN(8)
    node, edge, graph, hidden = inputs(b=1, n=6, seed=2)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    out, tri = net(node, edge, graph, hidden, mask)
    alone, tri_alone = net(node[:, :4], edge[:, :4, :4], graph, hidden[:, :4], torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(out[:, :4], alone)
    torch.testing.assert_close(tri[:, :4, :4], tri_alone)


def test_relabelling_nodes_relabels_outputs():
    torch.manual_seed(3)
    net = TripletGMPNN(8)
    node, edge, graph, hidden = inputs(n=6, seed=4)
    mask = torch.ones(2, 6, dtype=torch.bool)
    perm = torch.randperm(6)
    out, tri = net(node, edge, graph, hidden, mask)
    out_p, tri_p = net(node[:, perm], edge[:, perm][:, :, perm], graph, hidden[:, perm], mask)
    torch.testing.assert_close(out_p, out[:, perm])
    torch.testing.assert_close(tri_p, tri[:, perm][:, :, perm])
