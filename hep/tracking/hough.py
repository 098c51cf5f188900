"""The classical baseline: a Hough transform for prompt tracks, sliced in z0 and cot(theta) to survive pile-up.

A hit at (r, phi) lies on the transverse circle of a prompt track with curvature parameter ``k = q / pT`` and
initial direction phi0 when ``phi0 = phi + asin(0.3 B r k / 2)``; in r-z it lies on ``z = z0 + r cot(theta)``.
Every hit votes, for each k bin and each z0 slice, for the (phi0, cot(theta)) cell it implies; a cell's score
is the number of distinct layers among its hits.

A cell becomes a track when its score reaches ``min(min_layers, crossed - max_missing)`` (and at least 3),
where ``crossed`` is the number of layers a track with the cell's z0 and cot(theta) crosses in the
detector's acceptance: a forward track that leaves the barrel after four layers needs three of them, a
central one ``min_layers``. Tracks are taken best first, each hit going to the first track that claims it (a
track whose unclaimed hits fall below its cell's threshold is dropped). :func:`tune_hough` picks the
parameters by the TrackML score on validation events, as the GNN's edge threshold is picked on them.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hep.tracking.detector import C_LIGHT, Detector
from hep.tracking.tracks import tracking_metrics

MIN_HITS = 3  # the fewest layers any track may have (a reconstructable particle has >= 3 hits)


@dataclass(frozen=True)
class HoughConfig:
    pt_min: float = 1.0          # GeV: k = q / pT in [-1 / pt_min, 1 / pt_min]
    k_bins: int = 48
    phi_bins: int = 256
    z0_max: float = 150.0        # mm, z0 slices cover [-z0_max, z0_max]
    z0_step: float = 25.0        # mm between slice centres
    cot_bin: float = 0.3         # width of a cot(theta) bin
    eta_max: float = 2.6         # cot(theta) beyond sinh(eta_max) goes to the edge bins
    min_layers: int = 5          # layers a cell needs where the track crosses enough of them
    max_missing: int = 1         # layers a track may miss of those it crosses (inefficiency, cracks)

    def threshold(self, z0: np.ndarray, cot: np.ndarray, detector: Detector) -> np.ndarray:
        """Layers needed by cells at ``z0 [Z]`` (mm) and ``cot [C]`` (bin centres): ``[Z, C]``."""
        radius, half_length = detector.arrays()[:, :2].T
        z_at_layer = z0[:, None, None] + radius[None, None, :] * cot[None, :, None]      # [Z, C, L]
        crossed = (np.abs(z_at_layer) <= half_length).sum(-1)
        return np.maximum(MIN_HITS, np.minimum(self.min_layers, crossed - self.max_missing))


# what tune_hough tries by default: the thresholds and the r-z binning (a z0 slice of width w smears the cot(theta)
# of a hit at radius r by up to w / 2r, more than a 0.3 bin in the inner pixels)
TUNING_GRID: dict[str, tuple] = {"min_layers": (4, 5, 6), "max_missing": (1, 2), "z0_step": (15.0, 25.0),
                                 "cot_bin": (0.3, 0.6)}


def hough_tracks(position: np.ndarray, layer: np.ndarray, detector: Detector = Detector(),
                 cfg: HoughConfig = HoughConfig()) -> np.ndarray:
    """Track label per hit (``-1``: none).

    Args:
        position: hit coordinates ``[N, 3]`` in mm.
        layer: each hit's layer index ``[N]`` into ``detector.layers``.
        detector: geometry (for the layers a cell's track crosses) and field.
        cfg: binning and thresholds.
    """
    n = len(layer)
    r = np.hypot(position[:, 0], position[:, 1])
    phi = np.arctan2(position[:, 1], position[:, 0])
    z = position[:, 2]
    k = (np.arange(cfg.k_bins) + 0.5) / cfg.k_bins * 2 / cfg.pt_min - 1 / cfg.pt_min
    z0 = np.arange(-cfg.z0_max, cfg.z0_max + 1e-9, cfg.z0_step)
    # votes: hit x k x z0
    s = np.clip(C_LIGHT * detector.field_tesla * r[:, None] * k[None, :] / 2000.0, -1, 1)
    phi0 = np.mod(phi[:, None] + np.arcsin(s), 2 * np.pi)
    phi_bin = (phi0 / (2 * np.pi) * cfg.phi_bins).astype(np.int64) % cfg.phi_bins       # [n, K]
    cot_max = np.sinh(cfg.eta_max)
    cot = np.clip((z[:, None] - z0[None, :]) / r[:, None], -cot_max, cot_max)               # [n, Z]
    cot_bin = np.floor((cot + cot_max) / cfg.cot_bin).astype(np.int64)
    n_cot = int(np.floor(2 * cot_max / cfg.cot_bin)) + 1
    cot_centres = np.clip((np.arange(n_cot) + 0.5) * cfg.cot_bin - cot_max, -cot_max, cot_max)
    needed = cfg.threshold(z0, cot_centres, detector)                                    # [Z, C]
    hit = np.broadcast_to(np.arange(n)[:, None, None], (n, len(k), len(z0))).ravel()
    cell = (((np.arange(len(k))[None, :, None] * len(z0) + np.arange(len(z0))[None, None, :]) * cfg.phi_bins
             + phi_bin[:, :, None]) * n_cot + cot_bin[:, None, :]).ravel()
    # distinct layers per cell as a bit mask, then the cells with enough of them, best first
    masks = np.zeros(len(k) * len(z0) * cfg.phi_bins * n_cot, dtype=np.int64)
    np.bitwise_or.at(masks, cell, np.left_shift(1, layer[hit].astype(np.int64)))
    n_layers = np.zeros(len(masks), dtype=np.int64)
    used = np.flatnonzero(masks)
    n_layers[used] = _popcount(masks[used])
    cell_needs = needed[(cell // (n_cot * cfg.phi_bins)) % len(z0), cell % n_cot]
    member = n_layers[cell] >= cell_needs
    cell, hit, cell_needs = cell[member], hit[member], cell_needs[member]
    order = np.lexsort((cell, -n_layers[cell]))  # most layers first, then by cell id
    cell_of, hit_of, need_of = cell[order], hit[order], cell_needs[order]
    boundaries = np.flatnonzero(np.diff(cell_of)) + 1
    starts = np.concatenate([[0], boundaries]) if len(cell_of) else np.empty(0, np.int64)
    ends = np.concatenate([boundaries, [len(cell_of)]]) if len(cell_of) else np.empty(0, np.int64)
    labels = np.full(n, -1)
    track = 0
    for a, b in zip(starts, ends):
        hits = np.unique(hit_of[a:b])
        free = hits[labels[hits] < 0]
        if len(np.unique(layer[free])) >= need_of[a]:
            labels[free] = track
            track += 1
    return labels


def tune_hough(events: Sequence, detector: Detector = Detector(), grid: dict[str, Iterable] | None = None,
                base: HoughConfig = HoughConfig()) -> tuple[HoughConfig, list[tuple[HoughConfig, float]]]:
    """The configuration with the best mean TrackML score on ``events`` (validation), and every score.

    Args:
        events: objects with ``position``, ``layer``, ``particle_id`` and ``particle_pt`` (e.g. tracking Events).
        detector: the detector the events come from.
        grid: values to try per :class:`HoughConfig` field (default: :data:`TUNING_GRID`).
        base: the configuration the grid varies.
    """
    grid = TUNING_GRID if grid is None else grid
    names = list(grid)
    scored = []
    for values in itertools.product(*(grid[name] for name in names)):
        cfg = dataclasses.replace(base, **dict(zip(names, values)))
        score = np.mean([tracking_metrics(hough_tracks(e.position, e.layer, detector, cfg), e.layer,
                                          e.particle_id, e.particle_pt)["trackml_score"] for e in events])
        scored.append((cfg, float(score)))
    return max(scored, key=lambda item: item[1])[0], scored


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per element of a non-negative int64 array (layers fit in the low 32 bits)."""
    x = x.astype(np.uint64)
    count = np.zeros(x.shape, dtype=np.int64)
    while x.any():
        count += (x & np.uint64(1)).astype(np.int64)
        x >>= np.uint64(1)
    return count
