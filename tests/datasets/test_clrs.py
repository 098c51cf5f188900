"""CLRS executions against independent references (scipy.sparse.csgraph, networkx, sorted, bisect) on hundreds
of random instances, hints consistent with the outputs, the graph distributions, and padded batches."""
import bisect

import networkx as nx
import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree, shortest_path

from datasets.clrs import SPECS, Stage, collate, sample
from datasets.clrs.samplers import TRAIN_P, er_graph

INSTANCES = 200


def instances(algorithm, seed=0, p=TRAIN_P):
    rng = np.random.default_rng(seed)
    for k in range(INSTANCES):
        yield sample(algorithm, int(rng.integers(2, 20)), rng, p, random_pos=bool(k % 2))


def digraph(A):
    """A networkx DiGraph with nodes and each node's successors in index order."""
    g = nx.DiGraph()
    g.add_nodes_from(range(len(A)))
    g.add_edges_from(zip(*np.nonzero(A)))
    return g


def test_bfs_parents_are_the_lowest_index_neighbour_one_hop_closer():
    for e in instances("bfs"):
        A, s, pi = e["A"], int(e["s"]), e["pi"]
        dist = shortest_path(A, unweighted=True, indices=s)
        for v in range(len(A)):
            if v == s or np.isinf(dist[v]):
                assert pi[v] == v
            else:
                closer = [u for u in range(len(A)) if A[u, v] and dist[u] == dist[v] - 1]
                assert pi[v] == closer[0]
        assert np.array_equal(e["pi_h"][-1], pi)
        np.testing.assert_array_equal(e["reach_h"][-1], np.isfinite(dist))


@pytest.mark.parametrize("algorithm", ["bellman_ford", "dijkstra"])
def test_shortest_path_trees_equal_scipys(algorithm):
    for e in instances(algorithm, seed=1):
        A, s, pi = e["A"], int(e["s"]), e["pi"]
        dist, pred = shortest_path(A, directed=True, indices=s, return_predecessors=True)
        expected = np.where(pred < 0, np.arange(len(A)), pred)
        np.testing.assert_array_equal(pi, expected)
        assert np.array_equal(e["pi_h"][-1], pi)
        reached = np.isfinite(dist)
        np.testing.assert_allclose(e["d"][-1][reached], dist[reached], atol=1e-12)
        if algorithm == "dijkstra":
            np.testing.assert_array_equal(e["mark"][-1], reached)  # every reachable node was settled
            assert (np.diff(e["d"][np.arange(1, len(e["u"])), e["u"][1:]]) >= -1e-12).all()  # settled in order


def test_prim_builds_scipys_minimum_spanning_tree_of_the_source_component():
    for e in instances("mst_prim", seed=2):
        A, s, pi = e["A"], int(e["s"]), e["pi"]
        component = np.isfinite(shortest_path(A, unweighted=True, indices=s))
        tree = minimum_spanning_tree(A * np.outer(component, component)).toarray()
        expected = {frozenset((int(u), int(v))) for u, v in zip(*np.nonzero(tree))}
        built = {frozenset((v, int(pi[v]))) for v in range(len(A)) if pi[v] != v}
        assert built == expected
        assert all(pi[v] == v for v in np.flatnonzero(~component))
        assert np.array_equal(e["pi_h"][-1], pi)


def test_dfs_forest_equals_networkx():
    for e in instances("dfs", seed=3):
        A, pi = e["A"], e["pi"]
        expected = np.arange(len(A))
        for u, v in nx.dfs_edges(digraph(A)):
            expected[v] = u
        np.testing.assert_array_equal(pi, expected)
        assert np.array_equal(e["pi_h"][-1], pi)
        assert (e["color"][-1] == 2).all()            # every node finished
        assert (e["d"][-1] < e["f"][-1]).all()        # discovered before finished
        assert e["time"][-1] == 2 * len(A)            # one tick per discovery and per finish


def test_topological_sort_equals_reversed_networkx_postorder():
    for e in instances("topological_sort", seed=4):
        A = e["A"]
        g = digraph(A)
        assert nx.is_directed_acyclic_graph(g)
        order = [int(e["topo_head"])]
        while e["topo"][order[-1]] != order[-1]:
            order.append(int(e["topo"][order[-1]]))
        assert order == list(reversed(list(nx.dfs_postorder_nodes(g))))
        position = {v: k for k, v in enumerate(order)}
        assert all(position[u] < position[v] for u, v in g.edges)   # a valid topological order
        assert np.array_equal(e["topo_h"][-1], e["topo"]) and e["topo_head_h"][-1] == e["topo_head"]


def test_insertion_sort_equals_sorted():
    for e in instances("insertion_sort", seed=5):
        key, pred = e["key"], e["pred"]
        order = sorted(range(len(key)), key=lambda k: key[k])
        assert pred[order[0]] == order[0]
        assert all(pred[b] == a for a, b in zip(order, order[1:]))
        assert np.array_equal(e["pred_h"][-1], pred)
        assert len(e["pred_h"]) == len(key)           # one hint per insertion (and the start)


def test_binary_search_equals_bisect():
    for e in instances("binary_search", seed=6):
        key = list(e["key"])
        assert key == sorted(key)
        assert e["return"] == min(bisect.bisect_left(key, e["target"]), len(key) - 1)
        assert e["low"][-1] == e["high"][-1] == e["return"]
        assert len(e["low"]) <= int(np.ceil(np.log2(len(key)))) + 1   # halving


def test_graph_distributions():
    rng = np.random.default_rng(7)
    undirected = er_graph(rng, 200, 0.3, directed=False, acyclic=False, weighted=True)
    np.testing.assert_array_equal(undirected, undirected.T)
    assert abs((undirected[np.triu_indices(200, 1)] > 0).mean() - 0.3 ** 2) < 0.01   # both directions drawn
    directed = er_graph(rng, 200, 0.3, directed=True, acyclic=False, weighted=False)
    assert abs(directed.mean() - 0.3) < 0.01 and not np.array_equal(directed, directed.T)
    dag = er_graph(rng, 50, 0.5, directed=True, acyclic=True, weighted=False)
    assert nx.is_directed_acyclic_graph(digraph(dag)) and np.triu(dag, 1).sum() != dag.sum()  # relabelled
    weights = undirected[undirected > 0]
    assert 0 < weights.min() and weights.max() < 1


def test_every_algorithm_has_its_spec_and_positions():
    rng = np.random.default_rng(8)
    for algorithm, spec in SPECS.items():
        e = sample(algorithm, 9, rng)
        assert set(e) == set(spec)
        np.testing.assert_allclose(e["pos"], np.arange(9) / 9)
        hints = {len(e[k]) for k, f in spec.items() if f.stage is Stage.HINT}
        assert len(hints) == 1                        # every hint has the same number of steps
        shuffled = sample(algorithm, 9, rng, random_pos=True)["pos"]
        assert (np.diff(shuffled) > 0).all() and not np.allclose(shuffled, np.arange(9) / 9)
    with pytest.raises(ValueError, match="unknown algorithm"):
        sample("quicksort", 5, rng)


def test_batches_pad_nodes_and_steps():
    rng = np.random.default_rng(9)
    items = [("bellman_ford", sample("bellman_ford", n, rng)) for n in (4, 9, 6)]
    batch = collate(items)
    assert batch.node_mask.sum(1).tolist() == [4, 9, 6]
    assert batch.inputs["A"].shape == (3, 9, 9) and batch.inputs["s"].shape == (3,)
    t = int(batch.lengths.max())
    assert batch.hints["d"].shape == (3, t, 9)
    for b, (_, e) in enumerate(items):
        k = len(e["d"])
        assert batch.lengths[b] == k
        np.testing.assert_allclose(batch.hints["d"][b, k - 1:, :len(e["pos"])].numpy(),
                                   np.repeat(e["d"][-1:], t - k + 1, 0), rtol=1e-6)  # last state repeated
    with pytest.raises(ValueError, match="one algorithm"):
        collate([items[0], ("bfs", sample("bfs", 4, rng))])
