"""Hit graphs for GNN tracking (DeZoort et al. 2021; Exa.TrkX): one node per hit, directed edges from a hit
to hits on the next layer and on the layer after it (to bridge a missing hit), kept when they could belong
to a prompt track above the pT cut:

- phi slope ``|dphi / dr|`` below ``phi_slope_max`` (a helix from the beam line turns by ``dphi ~ dr / 2R``,
  ``R = pT / (0.3 B)``: 3e-4 rad/mm at 1 GeV in 2 T; 4e-4 keeps 99.9% of the pT > 1 GeV segments),
- ``|z0| < z0_max``, the segment's intercept with the beam line ``z0 = z1 - r1 dz / dr`` (beam spot sigma 50 mm).

Candidates are found per layer pair with a binary search in phi (hits sorted by phi, wrapped at +-pi), so the
cost grows with the number of kept edges rather than with the product of the layer occupancies.
Edge truth: both hits come from the same particle and no hit of that particle lies on a layer between them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gnn.graph import GraphBatch


@dataclass(frozen=True)
class GraphCuts:
    phi_slope_max: float = 4e-4  # rad / mm
    z0_max: float = 200.0        # mm
    max_skip: int = 2            # connect layer k to k + 1 .. k + max_skip


@dataclass(frozen=True)
class HitGraph:
    """An event's hit graph: ``senders``/``receivers`` index hits (inner to outer), ``y`` the edge truth."""

    senders: np.ndarray
    receivers: np.ndarray
    y: np.ndarray


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _layer_pair(inner: np.ndarray, outer: np.ndarray, r: np.ndarray, phi: np.ndarray, z: np.ndarray,
                cuts: GraphCuts) -> tuple[np.ndarray, np.ndarray]:
    """Edges between two layers' hits (index arrays into the event) that pass both cuts."""
    if len(inner) == 0 or len(outer) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = outer[np.argsort(phi[outer], kind="stable")]
    ring = np.concatenate([order, order, order])
    ring_phi = np.concatenate([phi[order] - 2 * np.pi, phi[order], phi[order] + 2 * np.pi])
    window = cuts.phi_slope_max * np.abs(np.max(r[outer]) - np.min(r[inner]))
    lo = np.searchsorted(ring_phi, phi[inner] - window, side="left")
    hi = np.minimum(np.searchsorted(ring_phi, phi[inner] + window, side="right"), lo + len(outer))
    counts = hi - lo
    senders = np.repeat(inner, counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    receivers = ring[starts + np.arange(counts.sum())]
    dr = r[receivers] - r[senders]
    slope = np.abs(_wrap(phi[receivers] - phi[senders])) / dr
    z0 = z[senders] - r[senders] * (z[receivers] - z[senders]) / dr
    keep = (slope < cuts.phi_slope_max) & (np.abs(z0) < cuts.z0_max)
    return senders[keep], receivers[keep]


def edge_truth(senders: np.ndarray, receivers: np.ndarray, layer: np.ndarray, particle_id: np.ndarray) -> np.ndarray:
    """True where both hits are the same particle's and that particle has no hit on a layer in between."""
    same = (particle_id[senders] == particle_id[receivers]) & (particle_id[senders] >= 0)
    gap = layer[receivers] - layer[senders]
    y = same & (gap == 1)
    skips = np.nonzero(same & (gap > 1))[0]
    if len(skips):
        layers_of = {}
        for pid, lay in zip(particle_id[particle_id >= 0], layer[particle_id >= 0]):
            layers_of.setdefault(int(pid), set()).add(int(lay))
        for k in skips:
            between = range(layer[senders[k]] + 1, layer[receivers[k]])
            y[k] = not any(b in layers_of[int(particle_id[senders[k]])] for b in between)
    return y


def build_graph(position: np.ndarray, layer: np.ndarray, particle_id: np.ndarray, n_layers: int,
                cuts: GraphCuts = GraphCuts()) -> HitGraph:
    """The candidate edges of one event and their truth."""
    r = np.hypot(position[:, 0], position[:, 1])
    phi = np.arctan2(position[:, 1], position[:, 0])
    z = position[:, 2]
    by_layer = [np.nonzero(layer == k)[0] for k in range(n_layers)]
    pairs = [_layer_pair(by_layer[a], by_layer[a + skip], r, phi, z, cuts)
             for skip in range(1, cuts.max_skip + 1) for a in range(n_layers - skip)]
    senders = np.concatenate([p[0] for p in pairs]).astype(np.int64)
    receivers = np.concatenate([p[1] for p in pairs]).astype(np.int64)
    return HitGraph(senders, receivers, edge_truth(senders, receivers, layer, particle_id))


def true_segments(layer: np.ndarray, particle_id: np.ndarray, keep: np.ndarray) -> set[tuple[int, int]]:
    """``(inner hit, outer hit)`` of consecutive hits along every particle with ``keep[particle_id]``."""
    segments = set()
    hits = np.nonzero(particle_id >= 0)[0]
    hits = hits[keep[particle_id[hits]]]
    order = hits[np.lexsort((layer[hits], particle_id[hits]))]
    for a, b in zip(order[:-1], order[1:]):
        if particle_id[a] == particle_id[b]:
            segments.add((int(a), int(b)))
    return segments


def efficiency_purity(graph: HitGraph, layer: np.ndarray, particle_id: np.ndarray,
                      keep: np.ndarray) -> tuple[float, float]:
    """Edge efficiency (true segments of the kept particles that are edges) and purity (true edges / edges)."""
    segments = true_segments(layer, particle_id, keep)
    edges = set(zip(graph.senders.tolist(), graph.receivers.tolist()))
    efficiency = len(segments & edges) / max(len(segments), 1)
    purity = float(graph.y.mean()) if len(graph.y) else 0.0
    return efficiency, purity


def features(position: np.ndarray, graph: HitGraph) -> GraphBatch:
    """DeZoort's inputs: nodes ``(r / 1000, phi / pi, z / 1000)``, edges ``(dr, dphi, dz, dR)`` with
    ``dR = sqrt(deta^2 + dphi^2)``; lengths in metres."""
    r = np.hypot(position[:, 0], position[:, 1])
    phi = np.arctan2(position[:, 1], position[:, 0])
    z = position[:, 2]
    eta = np.arcsinh(z / r)
    s, t = graph.senders, graph.receivers
    dphi = _wrap(phi[t] - phi[s])
    edges = np.column_stack([(r[t] - r[s]) / 1000, dphi, (z[t] - z[s]) / 1000,
                             np.hypot(eta[t] - eta[s], dphi)])
    nodes = np.column_stack([r / 1000, phi / np.pi, z / 1000])
    return GraphBatch.single(torch.from_numpy(nodes.astype(np.float32)), torch.from_numpy(s),
                             torch.from_numpy(t), edges=torch.from_numpy(edges.astype(np.float32)))
