"""The classical baseline: a Hough transform for prompt tracks, sliced in z0 and cot(theta) to survive pile-up.

A hit at (r, phi) lies on the transverse circle of a prompt track with curvature parameter ``k = q / pT`` and
initial direction phi0 when ``phi0 = phi + asin(0.3 B r k / 2)``; in r-z it lies on ``z = z0 + r cot(theta)``.
Every hit votes, for each k bin and each z0 slice, for the (phi0, cot(theta)) cell it implies; a cell's score
is the number of distinct layers among its hits. Cells with at least ``min_layers`` layers become tracks,
best first, each hit going to the first track that claims it (a track whose unclaimed hits drop below
``min_layers`` layers is dropped).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hep.tracking.detector import C_LIGHT


@dataclass(frozen=True)
class HoughConfig:
    pt_min: float = 1.0          # GeV: k = q / pT in [-1 / pt_min, 1 / pt_min]
    k_bins: int = 48
    phi_bins: int = 256
    z0_max: float = 150.0        # mm, z0 slices cover [-z0_max, z0_max]
    z0_step: float = 25.0        # mm between slice centres
    cot_bin: float = 0.3         # width of a cot(theta) bin
    eta_max: float = 2.6         # cot(theta) beyond sinh(eta_max) goes to the edge bins
    min_layers: int = 5


def hough_tracks(position: np.ndarray, layer: np.ndarray, field_tesla: float = 2.0,
                 cfg: HoughConfig = HoughConfig()) -> np.ndarray:
    """Track label per hit (``-1``: none)."""
    n = len(layer)
    r = np.hypot(position[:, 0], position[:, 1])
    phi = np.arctan2(position[:, 1], position[:, 0])
    z = position[:, 2]
    k = (np.arange(cfg.k_bins) + 0.5) / cfg.k_bins * 2 / cfg.pt_min - 1 / cfg.pt_min
    z0 = np.arange(-cfg.z0_max, cfg.z0_max + 1e-9, cfg.z0_step)
    # votes: hit x k x z0
    s = np.clip(C_LIGHT * field_tesla * r[:, None] * k[None, :] / 2000.0, -1, 1)
    phi0 = np.mod(phi[:, None] + np.arcsin(s), 2 * np.pi)
    phi_bin = (phi0 / (2 * np.pi) * cfg.phi_bins).astype(np.int64) % cfg.phi_bins       # [n, K]
    cot_max = np.sinh(cfg.eta_max)
    cot = np.clip((z[:, None] - z0[None, :]) / r[:, None], -cot_max, cot_max)               # [n, Z]
    cot_bin = np.floor((cot + cot_max) / cfg.cot_bin).astype(np.int64)
    n_cot = int(np.floor(2 * cot_max / cfg.cot_bin)) + 1
    hit = np.broadcast_to(np.arange(n)[:, None, None], (n, len(k), len(z0))).ravel()
    cell = (((np.arange(len(k))[None, :, None] * len(z0) + np.arange(len(z0))[None, None, :]) * cfg.phi_bins
             + phi_bin[:, :, None]) * n_cot + cot_bin[:, None, :]).ravel()
    # distinct layers per cell as a bit mask, then the cells with enough of them, best first
    masks = np.zeros(len(k) * len(z0) * cfg.phi_bins * n_cot, dtype=np.int64)
    np.bitwise_or.at(masks, cell, np.left_shift(1, layer[hit].astype(np.int64)))
    n_layers = np.zeros(len(masks), dtype=np.int64)
    used = np.flatnonzero(masks)
    n_layers[used] = _popcount(masks[used])
    member = n_layers[cell] >= cfg.min_layers
    cell_of, hit_of = cell[member], hit[member]
    order = np.lexsort((cell_of, -n_layers[cell_of]))  # most layers first, then by cell id
    cell_of, hit_of = cell_of[order], hit_of[order]
    boundaries = np.flatnonzero(np.diff(cell_of)) + 1
    starts = np.concatenate([[0], boundaries]) if len(cell_of) else np.empty(0, np.int64)
    ends = np.concatenate([boundaries, [len(cell_of)]]) if len(cell_of) else np.empty(0, np.int64)
    labels = np.full(n, -1)
    track = 0
    for a, b in zip(starts, ends):
        hits = np.unique(hit_of[a:b])
        free = hits[labels[hits] < 0]
        if len(np.unique(layer[free])) >= cfg.min_layers:
            labels[free] = track
            track += 1
    return labels


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per element of a non-negative int64 array (layers fit in the low 32 bits)."""
    x = x.astype(np.uint64)
    count = np.zeros(x.shape, dtype=np.int64)
    while x.any():
        count += (x & np.uint64(1)).astype(np.int64)
        x >>= np.uint64(1)
    return count
