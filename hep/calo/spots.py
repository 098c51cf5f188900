"""Spot-quantised showers as layer spot energies and ring spot counts, and the exact azimuthal split.

GFlash (``hep/calo/gflash.py``) deposits each layer's energy in spots of one energy per layer and shower
(``E_layer / <n_spots>``) dropped uniformly in azimuth, so every voxel holds an integer number of spots, and
given the spot count of a (layer, ring), its split over the ring's azimuthal bins is exactly multinomial
with equal probabilities. A shower is then fully described by, per layer, the spot energy ``q`` [MeV] and the
spot counts of its rings: 45 x (1 + 9) numbers in dataset 2's layout instead of 6,480 voxels, and the
azimuthal split needs no learning. Readout: voxel energy = spot count x ``q``, so a generator that emits
counts never makes a deposit the data cannot have (no sub-spot voxels, no threshold to tune).
"""
from __future__ import annotations

import numpy as np

from datasets.showers import CaloGeometry

MAX_DIVISOR = 16     # a layer's spot energy is its smallest non-zero voxel divided by at most this
TOLERANCE = 0.01     # spots: float32 voxels of ~1e4 spots are off by ~1e-3; a wrong divisor by >= 1/16


def spot_counts(showers: np.ndarray, geometry: CaloGeometry) -> tuple[np.ndarray, np.ndarray]:
    """``(q [N, L], counts [N, L, A, R])``: each layer's spot energy [MeV] (NaN for a layer without deposits)
    and the spot count of every voxel, with ``counts * q`` equal to the showers (float32 rounding aside).

    The spot energy is the layer's smallest non-zero voxel divided by the smallest k <= ``MAX_DIVISOR`` that
    makes every voxel an integer multiple of it (the smallest voxel may hold 2 or more spots).

    Args:
        showers: voxel energies ``[N, V]`` [MeV] in the geometry's (layer, alpha, radius) order.
        geometry: the voxelisation.

    Raises:
        ValueError: if a layer's voxels are not integer multiples of one energy (not spot-quantised
            showers, e.g. Geant4's), naming the first such shower and layer.
    """
    v = np.asarray(showers, dtype=np.float64).reshape(len(showers), geometry.n_layers, -1)
    smallest = np.where(v > 0, v, np.inf).min(-1)
    q = np.where(np.isfinite(smallest), smallest, np.nan)
    unresolved = np.isfinite(smallest)
    for k in range(1, MAX_DIVISOR + 1):
        ratio = v[unresolved] / (smallest[unresolved] / k)[:, None]
        ok = np.abs(ratio - np.round(ratio)).max(-1) < TOLERANCE
        rows = np.flatnonzero(unresolved)[ok]
        q.flat[rows] = smallest.flat[rows] / k
        unresolved.flat[rows] = False
        if not unresolved.any():
            break
    if unresolved.any():
        shower, layer = np.argwhere(unresolved)[0]
        raise ValueError(f"shower {shower}, layer {layer}: the voxel energies are not integer multiples of one "
                         f"spot energy (no divisor up to {MAX_DIVISOR} of the smallest deposit fits); the spot "
                         f"representation needs spot-quantised showers such as GFlash's")
    counts = np.round(v / np.where(np.isnan(q), 1.0, q)[..., None]).astype(np.int64)
    return q, counts.reshape(len(showers), *geometry.shape)


def fill_empty_layers(log_q: np.ndarray) -> np.ndarray:
    """``log q [N, L]`` with the NaNs of empty layers replaced by linear interpolation between the
    shower's nearest non-empty layers (constant beyond the first and last); an empty shower gets 0. The
    filled values carry no energy (the layer has no spots) but keep the feature smooth for a generator."""
    out = np.array(log_q, dtype=np.float64)
    layers = np.arange(out.shape[1])
    for row in out:
        known = ~np.isnan(row)
        row[:] = np.interp(layers, layers[known], row[known]) if known.any() else 0.0
    return out


def ring_counts_from_fractions(totals: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Integer counts ``[..., R]`` that sum to ``totals [...]`` and follow ``fractions [..., R]`` (negative
    entries count as 0; the largest-remainder rounding of ``totals x fractions / sum``)."""
    totals = np.asarray(totals, dtype=np.int64)
    f = np.clip(np.asarray(fractions, dtype=np.float64), 0.0, None)
    norm = f.sum(-1, keepdims=True)
    share = np.where(norm > 0, f / np.where(norm > 0, norm, 1.0), 1.0 / f.shape[-1]) * totals[..., None]
    counts = np.floor(share).astype(np.int64)
    missing = totals - counts.sum(-1)
    rank = np.argsort(np.argsort(-(share - counts), axis=-1, kind="stable"), axis=-1)  # 0 = largest remainder
    return counts + (rank < missing[..., None])


def split_azimuth(ring_counts: np.ndarray, n_alpha: int, rng: np.random.Generator) -> np.ndarray:
    """Voxel counts ``[..., A, R]`` from ring counts ``[..., R]``: each ring's spots multinomially over its
    ``n_alpha`` azimuthal bins with equal probabilities (exactly GFlash's law given the ring count)."""
    ring_counts = np.asarray(ring_counts, dtype=np.int64)
    voxels = rng.multinomial(ring_counts, np.full(n_alpha, 1.0 / n_alpha))  # [..., R, A]
    return np.swapaxes(voxels, -1, -2)
