"""Nowcast verification as meteorologists score it: CSI, (pooled) ensemble CRPS and radially averaged PSD.

Scores accumulate over many forecasts before the ratio is taken (contingency tables and CRPS sums per lead
time), as pysteps' ``*_accum`` functions and DGMR's evaluation do. Pixels outside the radar coverage are
left out of every score. Arrays are numpy, rain rates in mm/h, pixels 1 km.
"""
from __future__ import annotations

import numpy as np


def pool(field: np.ndarray, size: int, how: str = "max") -> np.ndarray:
    """Non-overlapping ``size`` x ``size`` pooling of the last two axes (``"max"`` or ``"mean"``); a partial
    border is dropped."""
    if size == 1:
        return field
    *lead, h, w = field.shape
    blocks = field[..., :h - h % size, :w - w % size].reshape(*lead, h // size, size, w // size, size)
    if how == "max":
        return blocks.max(axis=(-3, -1))
    if how == "mean":
        return blocks.mean(axis=(-3, -1))
    raise ValueError(f"pooling must be 'max' or 'mean', got {how!r}")


def contingency(forecast: np.ndarray, observed: np.ndarray, threshold: float,
                valid: np.ndarray | None = None) -> np.ndarray:
    """Hits, misses and false alarms ``[..., 3]`` summed over the last two axes (rain: ``>= threshold``)."""
    f, o = forecast >= threshold, observed >= threshold
    if valid is not None:
        f, o = f & valid, o & valid
    return np.stack([(f & o).sum(axis=(-2, -1)), (~f & o).sum(axis=(-2, -1)), (f & ~o).sum(axis=(-2, -1))],
                    axis=-1)


def csi_from_counts(counts: np.ndarray) -> np.ndarray:
    """Critical success index ``hits / (hits + misses + false alarms)``; NaN where no event was forecast or seen."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1)
    return np.divide(counts[..., 0], total, out=np.full(total.shape, np.nan), where=total > 0)


def crps_ensemble(members: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per-pixel CRPS of the ensemble's empirical distribution (Hersbach 2000; Gneiting and Raftery 2007):
    ``mean |X - y| - mean |X - X'| / 2`` over members ``X, X'`` ``[M, ...]`` and observation ``y`` ``[...]``.

    ``mean |X - X'|`` uses the sorted ensemble, ``2 / M**2 * sum_i (2i - M - 1) x_(i)``: O(M log M), not O(M^2).
    """
    m = members.shape[0]
    skill = np.abs(members - observed[None]).mean(axis=0)
    ranked = np.sort(members, axis=0)
    weights = (2 * np.arange(1, m + 1) - m - 1).reshape(-1, *([1] * observed.ndim))
    spread = 2.0 / m ** 2 * (weights * ranked).sum(axis=0)
    return skill - 0.5 * spread


def rapsd(field: np.ndarray, pixel_km: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectral density of the last two (equal) axes: ``(psd [..., L/2], wavelength_km)``.

    Power ``|FFT|**2 / (L*L)`` averaged over rings of integer radius in frequency-index space (pysteps' rapsd,
    vectorised over leading axes). Ring 0 is the mean; wavelengths are ``L * pixel_km / r``.
    """
    *lead, h, w = field.shape
    if h != w:
        raise ValueError(f"rapsd needs square fields, got {h} x {w}")
    power = np.abs(np.fft.fft2(field)) ** 2 / (h * w)
    k = np.fft.fftfreq(h, d=1.0 / h)
    radius = np.rint(np.hypot(k[:, None], k[None, :])).astype(np.int64).ravel()
    n_bins = h // 2 if h % 2 == 0 else h // 2 + 1
    keep = radius < n_bins
    flat = power.reshape(-1, h * w)[:, keep]
    counts = np.bincount(radius[keep], minlength=n_bins)
    sums = np.stack([np.bincount(radius[keep], weights=row, minlength=n_bins) for row in flat])
    psd = (sums / counts).reshape(*lead, n_bins)
    with np.errstate(divide="ignore"):
        wavelength = h * pixel_km / np.arange(n_bins)
    return psd, wavelength


class Scores:
    """Accumulates a method's scores over forecasts: CSI per threshold and lead (at 1 km and max-pooled to
    ``csi_pool`` km), CRPS per lead (pixel, and average/max pooled at ``crps_pools`` km), and mean PSD per lead.

    ``add(members [M, T, H, W], observed [T, H, W], valid [H, W])``; a deterministic method has M = 1, whose CRPS
    is its mean absolute error.
    """

    def __init__(self, thresholds: tuple[float, ...] = (1.0, 4.0, 8.0), csi_pool: int = 4,
                 crps_pools: tuple[int, ...] = (4, 16)) -> None:
        self.thresholds, self.csi_pool, self.crps_pools = thresholds, csi_pool, crps_pools
        self.counts: dict[tuple[float, int], np.ndarray] = {}
        self.crps: dict[str, np.ndarray] = {}
        self.crps_n: dict[str, np.ndarray] = {}
        self.psd_sum: np.ndarray | None = None
        self.n = 0

    def add(self, members: np.ndarray, observed: np.ndarray, valid: np.ndarray) -> None:
        if members.shape[1:] != observed.shape:
            raise ValueError(f"forecast members {members.shape} do not match observations {observed.shape}")
        for thr in self.thresholds:
            for size in (1, self.csi_pool):
                valid_p = pool(valid, size, "mean") == 1  # a pooled pixel is valid if all its pixels are
                # every member scored (the ensemble mean would be blurred), as in DGMR's evaluation
                c = sum(contingency(pool(m, size), pool(observed, size), thr, valid_p) for m in members)
                self.counts[(thr, size)] = self.counts.get((thr, size), 0) + c
        self._add_crps("pixel", members, observed, valid)
        for size in self.crps_pools:
            valid_p = pool(valid, size, "mean") == 1
            for how in ("mean", "max"):
                self._add_crps(f"{how}{size}", pool(members, size, how), pool(observed, size, how), valid_p)
        psd, self.wavelength = rapsd(np.where(valid, np.stack([members[0], observed]), 0.0))
        self.psd_sum = psd if self.psd_sum is None else self.psd_sum + psd
        self.n += 1

    def _add_crps(self, key: str, members: np.ndarray, observed: np.ndarray, valid: np.ndarray) -> None:
        crps = np.where(valid, crps_ensemble(members, observed), 0.0).sum(axis=(-2, -1))
        self.crps[key] = self.crps.get(key, 0) + crps
        self.crps_n[key] = self.crps_n.get(key, 0) + valid.sum() * np.ones(crps.shape)

    def csi(self, threshold: float, pooled: bool = False) -> np.ndarray:
        """CSI per lead time ``[T]``."""
        return csi_from_counts(self.counts[(threshold, self.csi_pool if pooled else 1)])

    def mean_crps(self, key: str = "pixel") -> np.ndarray:
        """Mean CRPS per lead ``[T]`` (mm/h); keys ``pixel``, ``mean4``, ``max4``, ``mean16``, ``max16``."""
        return self.crps[key] / self.crps_n[key]

    def psd(self, observed: bool = False) -> np.ndarray:
        """Mean PSD per lead ``[T, L/2]`` of one member (the first) per forecast, or of the observations."""
        return self.psd_sum[int(observed)] / self.n
