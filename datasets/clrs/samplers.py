"""Random instances on the benchmark's distributions, datasets of executions and padded batches.

Graphs are Erdos-Renyi: each ordered pair (self-loops included) is an edge with probability ``p``; undirected
graphs keep a pair when both directions were drawn; acyclic ones keep the upper triangle and relabel the nodes
by a random permutation; weights are uniform in [0, 1) (symmetric on undirected graphs). Training draws ``p``
from 0.1, 0.2, ..., 0.9 per instance and sizes from a list (Ibarz et al. 2022: 4, 7, 11, 13, 16); the test
graphs use ``p = 0.5``, the benchmark's sampler default. Arrays are uniform in [0, 1).

``pos`` is the node's position scalar: ``k / n`` on test data; on training data, sorted uniform values (Ibarz et
al.'s randomised positions, so that a network cannot learn the spacing ``1 / n`` of the training sizes).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.clrs.algorithms import ALGORITHMS, Probes
from datasets.clrs.specs import SPECS, Feature, Location, Stage, Type

TRAIN_P = tuple(round(0.1 * k, 1) for k in range(1, 10))
TEST_P = (0.5,)
TRAIN_SIZES = (4, 7, 11, 13, 16)

# how each algorithm's graph is drawn: (directed, acyclic, weighted, has a source node)
_GRAPHS = {"bfs": (False, False, False, True), "dfs": (True, False, False, False),
           "topological_sort": (True, True, False, False), "bellman_ford": (False, False, True, True),
           "dijkstra": (False, False, True, True), "mst_prim": (False, False, True, True)}


def er_graph(rng: np.random.Generator, n: int, p: float, directed: bool, acyclic: bool, weighted: bool
             ) -> np.ndarray:
    """An Erdos-Renyi graph as an ``[n, n]`` matrix ``A[u, v]`` (edge u -> v): 1 or the edge's weight, else 0."""
    edges = (rng.random((n, n)) < p).astype(float)
    if not directed:
        edges = np.triu(edges) * np.triu(edges.T)
        edges = edges + np.triu(edges, 1).T
    elif acyclic:
        order = rng.permutation(n)
        edges = np.triu(edges, 1)[order][:, order]
    if weighted:
        weights = rng.random((n, n))
        if not directed:
            weights = np.triu(weights) + np.triu(weights, 1).T
        edges = edges * weights
    return edges


def positions(rng: np.random.Generator, n: int, randomised: bool) -> np.ndarray:
    """The ``pos`` input: ``k / n``, or sorted uniform values."""
    return np.sort(rng.random(n)) if randomised else np.arange(n) / n


def sample(algorithm: str, n: int, rng: np.random.Generator, p: Sequence[float] = TEST_P,
           random_pos: bool = False) -> Probes:
    """One execution of ``algorithm`` on a random instance of ``n`` nodes.

    Args:
        algorithm: a key of ``specs.SPECS``.
        n: nodes (graph algorithms) or array length (sorting, search).
        rng: the generator every random draw comes from.
        p: edge probabilities, one drawn per instance.
        random_pos: randomised ``pos`` (training) instead of ``k / n``.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
    if n < 2:
        raise ValueError(f"instances need at least 2 nodes, got {n}")
    run = ALGORITHMS[algorithm]
    if algorithm in _GRAPHS:
        directed, acyclic, weighted, sourced = _GRAPHS[algorithm]
        A = er_graph(rng, n, float(rng.choice(p)), directed, acyclic, weighted)
        source = (int(rng.integers(n)),) if sourced else ()
        return run(A, *source, pos=positions(rng, n, random_pos))
    key = rng.random(n)
    if algorithm == "binary_search":
        return run(np.sort(key), float(rng.random()), pos=positions(rng, n, random_pos))
    return run(key, pos=positions(rng, n, random_pos))


class ClrsData(Dataset):
    """Executions of one algorithm, generated once (seeded) and held in memory.

    Args:
        algorithm: a key of ``specs.SPECS``.
        sizes: instance sizes, cycled through (example ``i`` has ``sizes[i % len(sizes)]`` nodes).
        count: executions.
        seed: seeds the generator.
        p: edge probabilities.
        random_pos: randomised ``pos`` inputs.
    """

    def __init__(self, algorithm: str, sizes: Sequence[int], count: int, seed: int,
                 p: Sequence[float] = TEST_P, random_pos: bool = False) -> None:
        rng = np.random.default_rng(seed)
        self.algorithm = algorithm
        self.examples = [sample(algorithm, sizes[i % len(sizes)], rng, p, random_pos) for i in range(count)]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> tuple[str, Probes]:
        return self.algorithm, self.examples[i]


@dataclass
class Batch:
    """Executions of one algorithm padded to the largest instance ``N`` and the longest trajectory ``T``.

    ``inputs``/``outputs``: per-node ``[B, N]``, per-edge ``[B, N, N]``, per-graph and ``mask_one`` ``[B]`` (the
    marked node's index); ``hints``: ``[B, T, ...]`` (a trajectory shorter than ``T`` repeats its last state).
    Index-valued features (pointers, ``mask_one``, categorical) are ``long``; the rest float. Padded nodes are
    0 in ``node_mask`` and point to node 0; nothing may attend to them.
    """

    algorithm: str
    inputs: dict[str, torch.Tensor]
    hints: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor]
    node_mask: torch.Tensor  # [B, N] bool
    lengths: torch.Tensor    # [B] hint steps of each execution

    def __len__(self) -> int:
        return len(self.lengths)

    def to(self, device: torch.device | str) -> Batch:
        inputs, hints, outputs = ({k: v.to(device) for k, v in d.items()}
                                  for d in (self.inputs, self.hints, self.outputs))
        return Batch(self.algorithm, inputs, hints, outputs, self.node_mask.to(device), self.lengths.to(device))


def _pad(value: np.ndarray, feature: Feature, n: int, leading: int) -> np.ndarray:
    """Pad the node axes (after ``leading`` axes) of one example's feature to ``n`` nodes (a ``mask_one`` is one
    node index per example: nothing to pad)."""
    if feature.location is Location.GRAPH or feature.type is Type.MASK_ONE:
        return value
    node_axes = 1 if feature.location is Location.NODE else 2
    width = [(0, 0)] * leading + [(0, n - value.shape[leading])] * node_axes
    return np.pad(value, width)


def collate(items: list[tuple[str, Probes]]) -> Batch:
    """Pad and stack executions of one algorithm into a :class:`Batch`."""
    algorithms = {a for a, _ in items}
    if len(algorithms) != 1:
        raise ValueError(f"a batch holds one algorithm, got {sorted(algorithms)}")
    algorithm = algorithms.pop()
    spec = SPECS[algorithm]
    examples = [probes for _, probes in items]
    n = max(len(e["pos"]) for e in examples)
    lengths = [len(next(e[k] for k, f in spec.items() if f.stage is Stage.HINT)) for e in examples]
    t = max(lengths)
    groups: dict[Stage, dict[str, torch.Tensor]] = {stage: {} for stage in Stage}
    for name, feature in spec.items():
        rows = []
        for e in examples:
            value = e[name]
            if feature.stage is Stage.HINT:
                value = np.concatenate([value, np.repeat(value[-1:], t - len(value), axis=0)])
            rows.append(_pad(value, feature, n, 1 if feature.stage is Stage.HINT else 0))
        stacked = np.stack(rows)
        integral = np.issubdtype(stacked.dtype, np.integer)
        groups[feature.stage][name] = torch.from_numpy(stacked).long() if integral else \
            torch.from_numpy(stacked.astype(np.float32))
    mask = torch.zeros(len(examples), n, dtype=torch.bool)
    for b, e in enumerate(examples):
        mask[b, :len(e["pos"])] = True
    return Batch(algorithm, groups[Stage.INPUT], groups[Stage.HINT], groups[Stage.OUTPUT], mask,
                 torch.tensor(lengths))
