"""Exact agreement of the cell-list search with brute force, edge cases and bad input."""
import numpy as np
import pytest
import torch

from gnn.neighbours import knn_graph, radius_graph
from tests.conftest import requires_cuda


def brute_radius(x, r, batch=None, self_loops=False):
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    near = d2 < r * r
    if batch is not None:
        near &= batch[:, None] == batch[None, :]
    if not self_loops:
        np.fill_diagonal(near, False)
    receivers, senders = np.nonzero(near)
    return set(zip(senders.tolist(), receivers.tolist()))


def brute_knn(x, k, batch=None):
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    if batch is not None:
        d2[batch[:, None] != batch[None, :]] = np.inf
    np.fill_diagonal(d2, np.inf)
    rows = {}
    for i in range(len(x)):
        order = np.lexsort((np.arange(len(x)), d2[i]))
        rows[i] = [j for j in order[:k] if np.isfinite(d2[i, j])]
    return rows


def as_set(senders, receivers):
    pairs = list(zip(np.asarray(senders).tolist(), np.asarray(receivers).tolist()))
    assert len(pairs) == len(set(pairs)), "duplicate edges"
    return set(pairs)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("n", [300, 6000])  # serial and parallel paths
def test_radius_graph_equals_brute_force(dim, n):
    x = np.random.default_rng(dim * n).random((n, dim))
    r = 0.3 / n ** (1 / dim) * 4
    assert as_set(*radius_graph(x, r)) == brute_radius(x, r)


def test_points_exactly_at_radius_are_excluded_and_duplicates_included():
    x = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.0], [0.0, 0.25], [1.0, 0.0]])
    edges = as_set(*radius_graph(x, 0.5))
    assert (1, 0) not in edges and (4, 1) not in edges  # distance exactly 0.5
    assert {(1, 2), (2, 1), (0, 3), (3, 0)} <= edges
    assert edges == brute_radius(x, 0.5)


def test_lattice_at_exact_spacing():
    g = np.stack(np.meshgrid(np.arange(12.0), np.arange(12.0), np.arange(4.0)), -1).reshape(-1, 3) * 0.1
    for r in (0.1, 0.1 * np.sqrt(2), 0.2):
        assert as_set(*radius_graph(g, r)) == brute_radius(g, r)


def test_empty_and_single_point():
    s, r = radius_graph(np.zeros((0, 3)), 1.0)
    assert s.shape == (0,) and r.shape == (0,)
    s, r = radius_graph(np.zeros((1, 2)), 1.0)
    assert len(s) == 0
    s, r = radius_graph(np.zeros((1, 2)), 1.0, self_loops=True)
    assert s.tolist() == [0] and r.tolist() == [0]


def test_batches_never_link_and_self_loops():
    rng = np.random.default_rng(5)
    x = rng.random((5000, 2))
    batch = rng.integers(0, 4, 5000)
    assert as_set(*radius_graph(x, 0.03, batch=batch, self_loops=True)) == \
        brute_radius(x, 0.03, batch=batch, self_loops=True)


def test_sparse_extent_uses_sorted_cells():
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.random((500, 3)), rng.random((20, 3)) * 1e5])  # far outliers: sparse grid
    assert as_set(*radius_graph(x, 0.1)) == brute_radius(x, 0.1)


def test_max_neighbours_keeps_the_nearest():
    rng = np.random.default_rng(7)
    x = rng.random((400, 2))
    s, r = radius_graph(x, 0.2, max_neighbours=5)
    full = brute_radius(x, 0.2)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    for i in range(len(x)):
        mine = sorted(s[r == i].tolist())
        candidates = sorted((d2[i, j], j) for j, ii in full if ii == i)
        assert mine == sorted(j for _, j in candidates[:5])


def test_torch_in_torch_out():
    x = torch.rand(100, 3, generator=torch.Generator().manual_seed(0))
    s, r = radius_graph(x, 0.3)
    assert isinstance(s, torch.Tensor) and s.dtype == torch.int64
    assert as_set(s.numpy(), r.numpy()) == brute_radius(x.double().numpy(), 0.3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_positions_raise(bad):
    x = np.random.default_rng(0).random((10, 2))
    x[3, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        radius_graph(x, 0.1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        knn_graph(x, 2)


def test_bad_arguments_raise():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="radius"):
        radius_graph(x, 0.0)
    with pytest.raises(ValueError, match="shape"):
        radius_graph(np.zeros((4, 5)), 1.0)
    with pytest.raises(ValueError, match="batch"):
        radius_graph(x, 1.0, batch=np.zeros(3, dtype=int))


@pytest.mark.parametrize("dim,n", [(2, 300), (3, 300), (2, 6000), (3, 5000)])
def test_knn_graph_equals_brute_force(dim, n):
    rng = np.random.default_rng(n + dim)
    x = rng.random((n, dim))
    x[10] = x[11]  # a duplicate point
    batch = np.sort(rng.integers(0, 3, n)) if n < 1000 else None
    s, r = knn_graph(x, 6, batch=batch)
    if n < 1000:
        expected = brute_knn(x, 6, batch)
        for i in range(n):
            assert s[r == i].tolist() == expected[i]
    else:
        tree = __import__("scipy.spatial", fromlist=["cKDTree"]).cKDTree(x)
        d, _ = tree.query(x, 7)
        by_receiver = np.argsort(r, kind="stable")  # rows stay nearest-first
        got = np.sqrt(((x[s] - x[r]) ** 2).sum(-1))[by_receiver].reshape(n, 6)
        assert np.allclose(got, d[:, 1:])


def test_knn_small_graphs_link_all_pairs():
    x = np.random.default_rng(1).random((5, 3))
    s, r = knn_graph(x, 10, batch=np.array([0, 0, 0, 1, 1]))
    assert as_set(s, r) == {(1, 0), (2, 0), (0, 1), (2, 1), (0, 2), (1, 2), (4, 3), (3, 4)}


def test_knn_in_feature_space_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 8, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 12 + [1] * 18)
    s, r = knn_graph(x, 4, batch=batch)
    expected = brute_knn(x.numpy(), 4, batch.numpy())
    for i in range(30):
        assert sorted(s[r == i].tolist()) == sorted(expected[i])


@requires_cuda
def test_cuda_tensors_in_cuda_tensors_out():
    x = torch.rand(500, 3, generator=torch.Generator().manual_seed(0)).cuda()
    s, r = radius_graph(x, 0.2)
    assert s.is_cuda and r.is_cuda
    assert as_set(s.cpu().numpy(), r.cpu().numpy()) == brute_radius(x.cpu().double().numpy(), 0.2)
    f = torch.randn(40, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s_gpu, r_gpu = knn_graph(f.cuda(), 5)
    s_cpu, r_cpu = knn_graph(f, 5)
    assert as_set(s_gpu.cpu(), r_gpu.cpu()) == as_set(s_cpu, r_cpu)


def test_knn_by_pairwise_distances_equals_the_cell_lists():
    """The torch path (CUDA tensors, exported graphs) gives the cell lists' neighbours, small graphs included."""
    from gnn.neighbours import _knn_dense

    rng = np.random.default_rng(3)
    batch = np.sort(rng.integers(0, 6, 200))
    batch[:3] = 0
    batch[3:5] = 1  # a graph of two points: fewer than k + 1
    batch = np.sort(batch)
    x = rng.random((200, 2))
    s, r = _knn_dense(torch.from_numpy(x), 5, torch.from_numpy(batch), num_graphs=7)  # graph 6 is empty
    s_ref, r_ref = knn_graph(x, 5, batch=batch)
    assert as_set(s.numpy(), r.numpy()) == as_set(s_ref, r_ref)
