"""The algorithms, run step by step with every intermediate state recorded as the benchmark's hints.

Each function takes the instance (an adjacency or weight matrix ``A[u, v]`` for an edge u -> v, or an array)
and returns :data:`Probes`: every feature of ``specs.SPECS[name]`` by name, inputs and outputs as per-node
``[n]``, per-edge ``[n, n]`` or per-graph ``[]`` arrays, hints stacked over time ``[T, ...]``. Pointers,
``mask_one`` and categorical values are integer indices. Ties are broken towards the lower node index, as the
benchmark's loops over ``range(n)`` do; the order of the steps (what one hint step is) follows the textbook
procedures (Cormen et al.), as the benchmark's does.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

Probes = dict[str, np.ndarray]
WHITE, GRAY, BLACK = 0, 1, 2


class _Hints:
    """Snapshots of the algorithm's state, one per step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, np.ndarray]] = []

    def record(self, **state) -> None:
        self.steps.append({k: np.array(v, copy=True) for k, v in state.items()})

    def stacked(self) -> Probes:
        return {k: np.stack([s[k] for s in self.steps]) for k in self.steps[0]}


def _graph_inputs(A: np.ndarray, pos: np.ndarray) -> Probes:
    return {"pos": pos, "A": A.astype(float), "adj": (A != 0).astype(float)}


def bfs(A: np.ndarray, s: int, pos: np.ndarray) -> Probes:
    """Breadth-first search from ``s`` on an undirected graph, one hint per frontier expansion: a node reached
    in this round points to its lowest-index neighbour reached before it (``pi[s] = s``; unreached nodes point
    to themselves)."""
    n = len(A)
    adj = A != 0
    reach, pi = np.zeros(n), np.arange(n)
    reach[s] = 1
    hints = _Hints()
    while True:
        before = reach.copy()
        hints.record(reach_h=before, pi_h=pi)
        for j in np.flatnonzero(before == 0):
            parents = np.flatnonzero((before == 1) & adj[:, j])
            if len(parents):
                pi[j], reach[j] = parents[0], 1
        if np.array_equal(reach, before):
            break
    return {**_graph_inputs(A, pos), "s": np.int64(s), "pi": pi, **hints.stacked()}


def bellman_ford(A: np.ndarray, s: int, pos: np.ndarray) -> Probes:
    """Single-source shortest paths by Bellman-Ford from ``s``, one hint per relaxation round (every edge out of
    a node reached before the round, at once); stops when no distance changes."""
    n = len(A)
    d, msk, pi = np.zeros(n), np.zeros(n), np.arange(n)
    msk[s] = 1
    hints = _Hints()
    while True:
        d_before, msk_before = d.copy(), msk.copy()
        hints.record(pi_h=pi, d=d_before, msk=msk_before)
        for v in range(n):
            for u in np.flatnonzero((msk_before == 1) & (A[:, v] != 0)):
                if msk[v] == 0 or d_before[u] + A[u, v] < d[v]:
                    d[v], pi[v] = d_before[u] + A[u, v], u
                msk[v] = 1
        if np.array_equal(d, d_before) and np.array_equal(msk, msk_before):
            break
    return {**_graph_inputs(A, pos), "s": np.int64(s), "pi": pi, **hints.stacked()}


def _priority_search(A: np.ndarray, s: int, pos: np.ndarray, prim: bool) -> Probes:
    """Dijkstra (priority = distance from ``s``) or Prim (priority = lightest edge to the tree) with an array
    queue: one hint per node taken from the queue, whose edges are then relaxed."""
    n = len(A)
    priority, mark, in_queue, pi = np.zeros(n), np.zeros(n), np.zeros(n), np.arange(n)
    in_queue[s] = 1
    name = "key" if prim else "d"
    hints = _Hints()
    hints.record(pi_h=pi, **{name: priority}, mark=mark, in_queue=in_queue, u=np.int64(s))
    for _ in range(n):
        if not in_queue.any():
            break
        u = int(np.flatnonzero(in_queue)[np.argmin(priority[in_queue == 1])])
        mark[u], in_queue[u] = 1, 0
        for v in np.flatnonzero((A[u] != 0) & (mark == 0)):
            through = A[u, v] if prim else priority[u] + A[u, v]
            if in_queue[v] == 0 or through < priority[v]:
                pi[v], priority[v], in_queue[v] = u, through, 1
        hints.record(pi_h=pi, **{name: priority}, mark=mark, in_queue=in_queue, u=np.int64(u))
    return {**_graph_inputs(A, pos), "s": np.int64(s), "pi": pi, **hints.stacked()}


def dijkstra(A: np.ndarray, s: int, pos: np.ndarray) -> Probes:
    """Single-source shortest paths by Dijkstra from ``s`` (non-negative weights)."""
    return _priority_search(A, s, pos, prim=False)


def mst_prim(A: np.ndarray, s: int, pos: np.ndarray) -> Probes:
    """The minimum spanning tree of ``s``'s component by Prim, grown from ``s``: ``pi`` is each node's parent
    in the tree."""
    return _priority_search(A, s, pos, prim=True)


@dataclass
class _Search:
    """The state of a depth-first search after one step."""

    color: np.ndarray
    pi: np.ndarray
    d: np.ndarray
    f: np.ndarray
    time: int
    node: int        # the node discovered or finished by this step
    finished: bool   # whether this step finished ``node``


def _depth_first(A: np.ndarray) -> Iterator[_Search]:
    """Depth-first search of a directed graph, roots and neighbours in index order, with an explicit stack.
    One step is one discovery or one finish; the state after each is yielded (the same arrays, updated)."""
    n = len(A)
    s = _Search(np.zeros(n, dtype=np.int64), np.arange(n), np.zeros(n), np.zeros(n), 0, 0, False)
    for root in range(n):
        if s.color[root] != WHITE:
            continue
        s.time += 1
        s.color[root], s.d[root], s.node, s.finished = GRAY, s.time, root, False
        stack = [root]
        yield s
        while stack:
            u = stack[-1]
            white = np.flatnonzero((A[u] != 0) & (s.color == WHITE))
            s.time += 1
            if len(white):
                v = int(white[0])
                s.pi[v], s.color[v], s.d[v], s.node, s.finished = u, GRAY, s.time, v, False
                stack.append(v)
            else:
                s.color[u], s.f[u], s.node, s.finished = BLACK, s.time, u, True
                stack.pop()
            yield s


def dfs(A: np.ndarray, pos: np.ndarray) -> Probes:
    """Depth-first search forest of a directed graph: ``pi`` is each node's parent (roots point to themselves);
    hints carry colours, discovery and finish times ``d``, ``f`` and the clock ``time`` (raw step counts, as
    the benchmark's), and the node just discovered or finished ``s``."""
    n = len(A)
    hints = _Hints()
    hints.record(pi_h=np.arange(n), color=np.zeros(n, dtype=np.int64), d=np.zeros(n), f=np.zeros(n),
                 s=np.int64(0), time=np.float64(0))
    for state in _depth_first(A):
        hints.record(pi_h=state.pi, color=state.color, d=state.d, f=state.f, s=np.int64(state.node),
                     time=np.float64(state.time))
    return {**_graph_inputs(A, pos), "pi": state.pi, **hints.stacked()}


def topological_sort(A: np.ndarray, pos: np.ndarray) -> Probes:
    """Topological order of a directed acyclic graph by depth-first search: each finished node is put in front
    of the list. ``topo`` points from each node to the one after it (the last to itself), ``topo_head`` marks
    the first."""
    n = len(A)
    topo, head = np.arange(n), -1
    hints = _Hints()
    hints.record(topo_h=topo, topo_head_h=np.int64(0), color=np.zeros(n, dtype=np.int64), s=np.int64(0))
    for state in _depth_first(A):
        if state.finished:
            if head >= 0:
                topo[state.node] = head
            head = state.node
        hints.record(topo_h=topo, topo_head_h=np.int64(max(head, 0)), color=state.color, s=np.int64(state.node))
    return {**_graph_inputs(A, pos), "topo": topo, "topo_head": np.int64(head), **hints.stacked()}


def _array_pointers(order: np.ndarray) -> np.ndarray:
    """``pred[order[k]] = order[k - 1]``, the first element pointing to itself."""
    pred = np.empty(len(order), dtype=np.int64)
    pred[order] = np.concatenate([order[:1], order[:-1]])
    return pred


def insertion_sort(key: np.ndarray, pos: np.ndarray) -> Probes:
    """Insertion sort of ``key`` (array order = node order): ``pred`` points from each element to the one
    before it in sorted order (the smallest to itself). One hint per inserted element: ``pred_h`` is the list
    as it stands, ``i`` the element inserted, ``j`` the element it was placed after."""
    n = len(key)
    order = np.arange(n)  # the node at each array position
    hints = _Hints()
    hints.record(pred_h=_array_pointers(order), i=np.int64(0), j=np.int64(0))
    for i in range(1, n):
        node, k = order[i], i - 1
        while k >= 0 and key[order[k]] > key[node]:
            order[k + 1] = order[k]
            k -= 1
        order[k + 1] = node
        hints.record(pred_h=_array_pointers(order), i=np.int64(node), j=np.int64(order[max(k, 0)]))
    return {**_array_inputs(key, pos), "pred": _array_pointers(order), **hints.stacked()}


def binary_search(key: np.ndarray, target: float, pos: np.ndarray) -> Probes:
    """Binary search of ``target`` in sorted ``key``: ``return`` marks the first element >= target (the last
    element when none is). One hint per halving of the interval [``low``, ``high``] around ``mid``."""
    if np.any(np.diff(key) < 0):
        raise ValueError("binary_search needs keys sorted in node order")
    low, high = 0, len(key) - 1
    hints = _Hints()
    hints.record(low=np.int64(low), high=np.int64(high), mid=np.int64((low + high) // 2))
    while low < high:
        mid = (low + high) // 2
        if target <= key[mid]:
            high = mid
        else:
            low = mid + 1
        hints.record(low=np.int64(low), high=np.int64(high), mid=np.int64((low + high) // 2))
    return {**_array_inputs(key, pos), "target": np.float64(target), "return": np.int64(high), **hints.stacked()}


def _array_inputs(key: np.ndarray, pos: np.ndarray) -> Probes:
    return {"pos": pos, "key": key.astype(float)}


ALGORITHMS: dict[str, Callable[..., Probes]] = {
    "bfs": bfs, "dfs": dfs, "topological_sort": topological_sort, "bellman_ford": bellman_ford,
    "dijkstra": dijkstra, "mst_prim": mst_prim, "insertion_sort": insertion_sort, "binary_search": binary_search}
