"""Training and evaluation samples: radar sequences cropped in space and time, importance-sampled by rain.

A sample is ``context`` frames of input and the ``leads`` frames that follow (DGMR: 4 and 18, i.e. 20 minutes
of context and 90 minutes of forecast at 5-minute steps), cropped to ``crop`` x ``crop`` pixels. Most radar crops
are dry, so a candidate crop is kept with probability (DGMR, Methods)

    q(x) = min(1, q_min + m * mean(1 - exp(-x / s)))

of its *context* frames ``x`` (mm/h). DGMR's q reads the whole sequence; then, for equal context wetness,
the kept crops' futures are wetter than the true conditional future (measured here: the +90 min wet
fraction 1.5-2.5 times the unselected one), and a model trained on them learns that rain grows. Selecting on
the context alone leaves the conditional distribution of the future given the context unbiased.

and ``q`` travels with the sample: weighting a statistic by ``1 / q`` undoes the selection. DGMR used
q_min = 2e-4, m = 0.1, s = 1 mm/h on UK radar, which is mostly dry; the defaults here (q_min = 0.02, m = 1)
suit the synthetic archive, where most crops hold some rain.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from datasets.radar import VARIABLE, check_same_grid, open_radar, radar_files
from weather.baselines import extrapolate


@dataclass(frozen=True)
class SamplingConfig:
    context: int = 4
    leads: int = 18
    crop: int = 256
    q_min: float = 0.02
    m: float = 1.0
    s: float = 1.0              # mm/h
    candidates: int = 16        # distinct random crop positions tried per time window
    stride: int = 2             # frames between window starts

    @property
    def length(self) -> int:
        return self.context + self.leads


@dataclass(frozen=True)
class Crop:
    """Where a sample comes from: file index, first frame, south-west pixel, acceptance probability."""

    file: int
    t0: int
    y0: int
    x0: int
    q: float


def acceptance(window: np.ndarray, crop: int, cfg: SamplingConfig) -> np.ndarray:
    """``q`` for every crop position of the context frames ``[T, Y, X]``: ``[Y - crop + 1, X - crop + 1]``.

    The per-pixel time mean of ``1 - exp(-x / s)`` is averaged over each crop with an integral image.
    """
    wet = np.nan_to_num(1.0 - np.exp(-window / cfg.s)).mean(axis=0, dtype=np.float64)
    integral = np.pad(wet.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[crop:, crop:] - integral[:-crop, crop:] - integral[crop:, :-crop] + integral[:-crop, :-crop]
    return np.minimum(1.0, cfg.q_min + cfg.m * sums / crop ** 2)


def sample_crops(datasets: Sequence[xr.Dataset], cfg: SamplingConfig, seed: int) -> list[Crop]:
    """Seeded importance sampling over all windows of all files (see the module docstring)."""
    rng = np.random.default_rng(seed)
    crops = []
    for f, ds in enumerate(datasets):
        n_t, n_y, n_x = (ds.sizes[d] for d in ("time", "y", "x"))
        if n_y < cfg.crop or n_x < cfg.crop:
            raise ValueError(f"crop {cfg.crop} is larger than the {n_y} x {n_x} grid")
        for t0 in range(0, n_t - cfg.length + 1, cfg.stride):
            q = acceptance(ds[VARIABLE][t0:t0 + cfg.context].values, cfg.crop, cfg)
            for position in rng.choice(q.size, min(cfg.candidates, q.size), replace=False):
                y0, x0 = divmod(int(position), q.shape[1])
                if rng.random() < q[y0, x0]:
                    crops.append(Crop(f, t0, y0, x0, float(q[y0, x0])))
    return crops


class RadarSamples(Dataset):
    """Importance-sampled crops of one split folder, each ``{"inputs": [context, H, W], "targets": [leads, H, W],
    "valid": [H, W], "q": []}`` in mm/h (no-data pixels are 0 in the tensors and 0 in ``valid``)."""

    def __init__(self, folder: str | os.PathLike, cfg: SamplingConfig = SamplingConfig(), seed: int = 0) -> None:
        self.files = radar_files(folder)
        self.datasets = [open_radar(p, check_data=True) for p in self.files]
        check_same_grid(self.datasets, [str(p) for p in self.files])
        self.cfg = cfg
        self.crops = sample_crops(self.datasets, cfg, seed)
        if not self.crops:
            raise ValueError(f"{folder}: no crop of {cfg.crop} px and {cfg.length} frames was accepted; "
                             "use a smaller crop, more events, or a larger q_min")
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.crops)

    def _frames(self, file: int) -> np.ndarray:
        """A file's images, read once per worker (an event is tens of MB; use dask for more)."""
        if file not in self._cache:
            self._cache[file] = self.datasets[file][VARIABLE].values
        return self._cache[file]

    def sequence(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``[length, crop, crop]`` (mm/h, NaN for no data) and the coverage mask ``[crop, crop]``."""
        c, n = self.crops[i], self.cfg.crop
        frames = self._frames(c.file)[c.t0:c.t0 + self.cfg.length, c.y0:c.y0 + n, c.x0:c.x0 + n]
        valid = self.datasets[c.file]["valid"].values[c.y0:c.y0 + n, c.x0:c.x0 + n].astype(bool)
        return frames, valid

    def start_time(self, i: int) -> np.datetime64:
        """Time of the last context frame, the forecast's reference time."""
        c = self.crops[i]
        return self.datasets[c.file]["time"].values[c.t0 + self.cfg.context - 1]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        frames, valid = self.sequence(i)
        frames = torch.from_numpy(np.nan_to_num(frames, nan=0.0))
        return {"inputs": frames[:self.cfg.context], "targets": frames[self.cfg.context:],
                "valid": torch.from_numpy(valid), "q": torch.tensor(self.crops[i].q, dtype=torch.float32)}


class ExtrapolatedSamples(Dataset):
    """The crops of a :class:`RadarSamples`, each also with pysteps' extrapolation of its context
    (``"extrapolation": [leads, H, W]`` mm/h), for models that correct it; computed once per crop and kept
    (0.5 s per 128 km crop, more than a training step)."""

    def __init__(self, samples: RadarSamples) -> None:
        self.samples = samples
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.samples[i]
        if i not in self._cache:
            self._cache[i] = extrapolate(item["inputs"][None], self.samples.cfg.leads)[0]
        return {**item, "extrapolation": self._cache[i]}


SQUARE_SYMMETRIES = 8  # quarter turns and reflections of a square crop


def dihedral(frames: torch.Tensor, g: int) -> torch.Tensor:
    """Symmetry ``g`` (0..7) of the square on the last two axes of ``frames [..., H, W]``: ``g % 4`` quarter
    turns, then a left-right reflection when ``g >= 4``; g = 0 is the identity."""
    if not 0 <= g < SQUARE_SYMMETRIES:
        raise ValueError(f"the square has {SQUARE_SYMMETRIES} symmetries, got g = {g}")
    turned = torch.rot90(frames, g % 4, dims=(-2, -1))
    return turned.flip(-1) if g >= 4 else turned


def split_folder(data_dir: str | os.PathLike, split: str) -> Path:
    folder = Path(data_dir) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such split folder; run `physml data generate radar --out {data_dir}`")
    return folder
