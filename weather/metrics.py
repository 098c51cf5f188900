"""Nowcast verification as meteorologists score it: CSI, fractions skill score, (pooled) ensemble CRPS, rank
histograms and radially averaged PSD.

Scores accumulate over many forecasts before the ratio is taken (contingency tables and CRPS sums per lead
time), as pysteps' ``*_accum`` functions and DGMR's evaluation do. Pixels outside the radar coverage are
left out of every score. Arrays are numpy, rain rates in mm/h, pixels 1 km.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter


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


def fss_sums(forecast: np.ndarray, observed: np.ndarray, threshold: float, scale: int,
             valid: np.ndarray | None = None) -> np.ndarray:
    """Fractions skill score sums (Roberts and Lean 2008) of ``[..., H, W]`` fields: ``[..., 3]`` = sums over
    the last two axes of ``P_f^2``, ``P_f P_o`` and ``P_o^2``, where ``P`` is the fraction of pixels at or above
    ``threshold`` in the ``scale`` x ``scale`` window around each pixel (zero-padded, as pysteps' ``fss``);
    pixels outside ``valid`` count as dry. ``forecast`` may have leading axes more than ``observed`` (ensemble
    members): the observation's fractions are computed once and broadcast. Accumulate, then
    :func:`fss_from_sums`."""
    f, o = forecast >= threshold, observed >= threshold
    if valid is not None:
        f, o = f & valid, o & valid
    pf, po = (uniform_filter(x.astype(np.float64), size=(1,) * (x.ndim - 2) + (scale, scale), mode="constant")
              for x in (f, o))
    pf, po = np.broadcast_arrays(pf, po)
    return np.stack([(pf * pf).sum(axis=(-2, -1)), (pf * po).sum(axis=(-2, -1)), (po * po).sum(axis=(-2, -1))],
                    axis=-1)


def fss_from_sums(sums: np.ndarray) -> np.ndarray:
    """``1 - sum (P_f - P_o)^2 / (sum P_f^2 + sum P_o^2)``; NaN where neither field has an event."""
    sums = np.asarray(sums, dtype=np.float64)
    denominator = sums[..., 0] + sums[..., 2]
    numerator = sums[..., 0] - 2 * sums[..., 1] + sums[..., 2]
    return 1.0 - np.divide(numerator, denominator, out=np.full(denominator.shape, np.nan), where=denominator > 0)


def rank_counts(members: np.ndarray, observed: np.ndarray, threshold: float, rng: np.random.Generator,
                valid: np.ndarray | None = None) -> np.ndarray:
    """Rank-histogram counts ``[..., M + 1]`` of the observation among ``M`` members ``[M, ..., H, W]``
    (Talagrand; as pysteps' ``rankhist``): values below ``threshold`` are one tie, an observation tied with
    members takes a uniformly random rank among the tied places, and pixels where the observation and every
    member are below ``threshold`` (or outside ``valid``) are left out. A reliable ensemble has a flat
    histogram."""
    m = members.shape[0]
    x = np.where(members >= threshold, members, -1.0)
    y = np.where(observed >= threshold, observed, -1.0)
    keep = (y >= 0) | (x >= 0).any(axis=0)
    if valid is not None:
        keep &= valid
    below, ties = (x < y).sum(axis=0), (x == y).sum(axis=0)
    rank = below + np.floor(rng.random(y.shape) * (ties + 1)).astype(np.int64)
    lead = rank.reshape(-1, *rank.shape[-2:]) if rank.ndim > 2 else rank[None]
    keep = np.broadcast_to(keep, rank.shape).reshape(lead.shape)
    counts = np.stack([np.bincount(r[k], minlength=m + 1) for r, k in zip(lead, keep)])
    return counts.reshape(*rank.shape[:-2], m + 1)


def reliability_index(counts: np.ndarray) -> np.ndarray:
    """Flatness of rank histograms ``[..., M + 1]``: ``sum_j |f_j - 1 / (M + 1)|`` over the relative
    frequencies ``f_j`` (Delle Monache et al. 2006); 0 is flat, 2 M / (M + 1) all in one bin."""
    counts = np.asarray(counts, dtype=np.float64)
    f = counts / counts.sum(axis=-1, keepdims=True)
    return np.abs(f - 1.0 / counts.shape[-1]).sum(axis=-1)


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
    ``csi_pool`` km), FSS per threshold, scale (``fss_scales`` km) and lead, CRPS per lead (pixel, and
    average/max pooled at ``crps_pools`` km), rank-histogram counts per lead (ensembles; rain below
    ``rank_threshold`` mm/h is one tie) and mean PSD per lead.

    ``add(members [M, T, H, W], observed [T, H, W], valid [H, W])``; a deterministic method has M = 1, whose CRPS
    is its mean absolute error. CSI and FSS score every member (an ensemble mean would be blurred), as in
    DGMR's evaluation; the CSI of the ensemble median (rain where most members have it) and of the ensemble mean
    (rain where the members' mean rate reaches the threshold) are kept too.
    """

    def __init__(self, thresholds: tuple[float, ...] = (1.0, 4.0, 8.0), csi_pool: int = 4,
                 crps_pools: tuple[int, ...] = (4, 16), fss_scales: tuple[int, ...] = (4, 8, 16, 32, 64),
                 rank_threshold: float = 0.1, seed: int = 0) -> None:
        self.thresholds, self.csi_pool, self.crps_pools = thresholds, csi_pool, crps_pools
        self.fss_scales, self.rank_threshold = fss_scales, rank_threshold
        self.rng = np.random.default_rng(seed)  # breaks ties in the rank histograms
        self.counts: dict[tuple[float, int], np.ndarray] = {}
        self.summary_counts: dict[tuple[str, float], np.ndarray] = {}  # (median | mean, threshold)
        self.fss_sums: dict[tuple[float, int], np.ndarray] = {}
        self.ranks: np.ndarray | None = None
        self.crps: dict[str, np.ndarray] = {}
        self.crps_n: dict[str, np.ndarray] = {}
        self.psd_sum: np.ndarray | None = None
        self.n = 0

    def add(self, members: np.ndarray, observed: np.ndarray, valid: np.ndarray) -> None:
        if members.shape[1:] != observed.shape:
            raise ValueError(f"forecast members {members.shape} do not match observations {observed.shape}")
        summaries = {"median": np.median(members, axis=0),  # rain where more than half the members have it
                     "mean": members.mean(axis=0)}
        for thr in self.thresholds:
            for size in (1, self.csi_pool):
                valid_p = pool(valid, size, "mean") == 1  # a pooled pixel is valid if all its pixels are
                # every member scored (the ensemble mean would be blurred), as in DGMR's evaluation
                c = sum(contingency(pool(m, size), pool(observed, size), thr, valid_p) for m in members)
                self.counts[(thr, size)] = self.counts.get((thr, size), 0) + c
            for kind, summary in summaries.items():
                self.summary_counts[(kind, thr)] = (self.summary_counts.get((kind, thr), 0)
                                                    + contingency(summary, observed, thr, valid))
            for scale in self.fss_scales:
                sums = fss_sums(members, observed, thr, scale, valid).sum(axis=0)
                self.fss_sums[(thr, scale)] = self.fss_sums.get((thr, scale), 0) + sums
        if len(members) > 1:
            ranks = rank_counts(members, observed, self.rank_threshold, self.rng, valid)
            self.ranks = ranks if self.ranks is None else self.ranks + ranks
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
        """CSI per lead time ``[T]``, every member scored."""
        return csi_from_counts(self.counts[(threshold, self.csi_pool if pooled else 1)])

    def summary_csi(self, threshold: float, summary: str = "median") -> np.ndarray:
        """CSI per lead time ``[T]`` of the ensemble ``median`` or ``mean`` (a deterministic method's only
        member)."""
        return csi_from_counts(self.summary_counts[(summary, threshold)])

    def fss(self, threshold: float, scale: int) -> np.ndarray:
        """FSS per lead time ``[T]``."""
        return fss_from_sums(self.fss_sums[(threshold, scale)])

    def rank_histogram(self) -> np.ndarray | None:
        """Relative rank frequencies per lead ``[T, M + 1]`` (None for a deterministic method)."""
        return None if self.ranks is None else self.ranks / self.ranks.sum(axis=-1, keepdims=True)

    def mean_crps(self, key: str = "pixel") -> np.ndarray:
        """Mean CRPS per lead ``[T]`` (mm/h); keys ``pixel``, ``mean4``, ``max4``, ``mean16``, ``max16``."""
        return self.crps[key] / self.crps_n[key]

    def psd(self, observed: bool = False) -> np.ndarray:
        """Mean PSD per lead ``[T, L/2]`` of one member (the first) per forecast, or of the observations."""
        return self.psd_sum[int(observed)] / self.n
