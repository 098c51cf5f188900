"""The suite's tasks as Gato sees them: fixed-length rows of input values and target values, each task with its
own metric and the physics baseline it must beat.

- ``jets`` (hep): the 16 leading constituents of a jet, (d_eta, d_phi, ln pT/pT_jet) each -> its label
  (top or QCD) as a discrete token. Metric: ROC AUC of p(top) / (p(top) + p(QCD)); baseline: the soft-drop
  mass window + tau3/tau2 cut of ``evaluate jets``.
- ``disks`` (sims): 12 soft disks in a box under gravity (``physml data generate soft_disks --particles
  12``): positions relative to the box centre [m] and the last displacements [vel_std units] -> the next
  second difference x(t+1) - 2 x(t) + x(t-1) [acc_std units]. Metric: one-step position RMSE [mm];
  baseline: ballistic motion (constant velocity plus gravity).
- ``radar`` (weather): three 5-minute frames of a 64 km crop averaged to 8 x 8 pixels of 8 km, as ln(1 + R)
  (R in mm/h) -> the frame 30 minutes after the last. Metric: RMSE of R [mm/h] on the 8 km grid; baselines:
  persistence and pysteps' Lagrangian extrapolation (run on the 1 km crop, then averaged the same way).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SPLITS = ("train", "valid", "test")
JET_PARTICLES = 16
RADAR_CONTEXT, RADAR_LEAD, RADAR_CROP, RADAR_POOL = 3, 6, 64, 8


@dataclass(frozen=True)
class Examples:
    """One split of one task: ``inputs [n, I]`` and ``targets [n, O]`` (float; integer class labels for a
    discrete task), ``baselines`` (name -> the baseline's prediction, in the metric's terms), and ``extra``
    arrays the metric needs (e.g. the last positions, to turn accelerations into positions)."""

    inputs: np.ndarray
    targets: np.ndarray
    baselines: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]


@dataclass(frozen=True)
class Task:
    """A task: how to read its examples and how to score a prediction.

    Args:
        name: the task token's name.
        discrete: targets are class labels (one token) rather than binned values.
        examples: ``examples(data_dir, split, limit, seed) -> Examples``.
        score: ``score(examples, prediction) -> {metric: value}``; baselines are scored by the same function.
        to_metric: ``to_metric(examples, values)``: the model's decoded target values (class-1 probabilities
            for a discrete task) in the terms ``score`` takes.
        metric: the headline key of ``score``; higher_is_better says which way it goes.
    """

    name: str
    discrete: bool
    examples: Callable[[str, str, int | None, int], Examples]
    score: Callable[[Examples, np.ndarray], dict[str, float]]
    to_metric: Callable[[Examples, np.ndarray], np.ndarray]
    metric: str
    higher_is_better: bool


# ---- jets -------------------------------------------------------------------------------------------------

def jet_examples(data_dir: str, split: str, limit: int | None, seed: int) -> Examples:
    """The jets of ``split`` (positional, as ``train jets``), their leading constituents, the cut's scores."""
    from hep.jets.evaluate import baselines
    from hep.jets.inputs import load_jets
    from hep.jets.train import jet_files
    from hep.jets.train import split as split_jets

    files = jet_files(data_dir)
    jets = split_jets(load_jets(files))[split]
    n = min(len(jets), limit or len(jets))
    features, mask = jets.features[:n, :, :JET_PARTICLES], jets.mask[:n, :JET_PARTICLES]
    rows = torch.stack([features[:, 4], features[:, 5], features[:, 2]], 2) * mask[..., None]  # deta, dphi, ln ptrel
    cut = {}
    if split == "test":
        scores, labels = baselines(files, None)
        if not np.array_equal(labels[:n], jets.label[:n].numpy()):
            raise ValueError(f"{data_dir}: the jet-level branches do not line up with the constituents")
        cut = {"soft-drop mass + tau3/tau2 cut": scores["cut"][:n]}
    return Examples(rows.flatten(1).numpy(), jets.label[:n, None].numpy(), cut, {})


def jet_score(examples: Examples, prediction: np.ndarray) -> dict[str, float]:
    from hep.classification import roc_auc

    return {"auc": roc_auc(examples.targets[:, 0], prediction)}


# ---- soft disks -------------------------------------------------------------------------------------------

def disk_examples(data_dir: str, split: str, limit: int | None, seed: int) -> Examples:
    """Every (trajectory, frame) with a frame before and after it, shuffled with ``seed``."""
    from datasets.trajectories import TrajectoryReader

    path = Path(data_dir) / f"{split}.h5"
    with TrajectoryReader(path) as reader:
        meta = reader.metadata
        positions = [reader[i].position.astype(np.float64) for i in range(len(reader))]
    centre = np.mean(meta["bounds"], axis=1)
    vel_std, acc_std = np.asarray(meta["vel_std"]), np.asarray(meta["acc_std"])
    gravity = meta["solver_params"]["gravity"] * meta["dt"] ** 2  # [m / frame^2] along -y
    inputs, targets, last, previous = [], [], [], []
    for x in positions:
        x_prev, x_now, x_next = x[:-2], x[1:-1], x[2:]
        inputs.append(np.concatenate([(x_now - centre).reshape(len(x_now), -1),
                                      ((x_now - x_prev) / vel_std).reshape(len(x_now), -1)], 1))
        targets.append(((x_next - 2 * x_now + x_prev) / acc_std).reshape(len(x_now), -1))
        last.append(x_now.reshape(len(x_now), -1))
        previous.append(x_prev.reshape(len(x_now), -1))
    order = np.random.default_rng(seed).permutation(sum(len(t) for t in targets))[:limit]
    inputs, targets, last, previous = (np.concatenate(a)[order] for a in (inputs, targets, last, previous))
    ballistic = 2 * last - previous
    ballistic[:, 1::2] -= gravity
    return Examples(inputs, targets, {"ballistic (constant velocity + gravity)": ballistic},
                    {"last": last, "previous": previous, "acc_std": np.tile(acc_std, targets.shape[1] // 2)})


def disk_positions(examples: Examples, accelerations: np.ndarray) -> np.ndarray:
    """Next positions ``[n, 2N]`` [m] from predicted second differences in acc_std units."""
    return 2 * examples.extra["last"] - examples.extra["previous"] + accelerations * examples.extra["acc_std"]


def disk_score(examples: Examples, prediction: np.ndarray) -> dict[str, float]:
    """``prediction``: next positions [m] (:func:`disk_positions` of the decoded tokens; baselines give them)."""
    truth = disk_positions(examples, examples.targets)
    return {"rmse_mm": 1e3 * float(np.sqrt(np.mean((prediction - truth) ** 2)))}


# ---- radar ------------------------------------------------------------------------------------------------

def pool(frames: np.ndarray) -> np.ndarray:
    """``[..., 64, 64]`` -> ``[..., 8, 8]`` block means."""
    *lead, h, w = frames.shape
    return frames.reshape(*lead, h // RADAR_POOL, RADAR_POOL, w // RADAR_POOL, RADAR_POOL).mean((-3, -1))


def radar_examples(data_dir: str, split: str, limit: int | None, seed: int) -> Examples:
    """Importance-sampled 64 km crops (as the nowcasters train on), coarsened; baselines on the test split."""
    from weather.baselines import Extrapolation, Persistence
    from weather.samples import RadarSamples, SamplingConfig, split_folder

    cfg = SamplingConfig(context=RADAR_CONTEXT, leads=RADAR_LEAD, crop=RADAR_CROP)
    samples = RadarSamples(split_folder(data_dir, split), cfg, seed=seed)
    order = np.random.default_rng(seed).permutation(len(samples))[:limit]
    contexts, truth, valid = [], [], []
    for i in order:
        frames, mask = samples.sequence(int(i))
        contexts.append(np.nan_to_num(frames[:RADAR_CONTEXT]))
        truth.append(np.nan_to_num(frames[-1]))
        valid.append(mask)
    contexts, truth = np.stack(contexts), np.stack(truth)
    baselines = {}
    if split == "test":
        for method in (Persistence(RADAR_LEAD), Extrapolation(RADAR_LEAD)):
            forecasts = np.stack([method.forecast(c)[0, -1] for c in contexts])
            baselines[method.name] = pool(forecasts).reshape(len(truth), -1)
    return Examples(np.log1p(pool(contexts)).reshape(len(truth), -1), np.log1p(pool(truth)).reshape(len(truth), -1),
                    baselines, {"valid": pool(np.stack(valid).astype(np.float64)).reshape(len(truth), -1)})


def radar_score(examples: Examples, prediction: np.ndarray) -> dict[str, float]:
    """``prediction``: rain rates [mm/h] on the 8 km grid (``expm1`` of the decoded tokens); pixels of a crop
    that are mostly outside the radar's coverage are left out."""
    inside = examples.extra["valid"] > 0.5
    error = (prediction - np.expm1(examples.targets))[inside]
    return {"rmse_mmh": float(np.sqrt(np.mean(error ** 2)))}


TASKS = {task.name: task for task in (
    Task("jets", True, jet_examples, jet_score, lambda _, p: p, "auc", True),
    Task("disks", False, disk_examples, disk_score, disk_positions, "rmse_mm", False),
    Task("radar", False, radar_examples, radar_score, lambda _, v: np.expm1(v), "rmse_mmh", False))}
