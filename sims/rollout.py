"""Rollouts of a learned simulator, their baselines and metrics, and their export as ``particle-rollout``
files (:mod:`datasets.rollouts`, one per trajectory)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from datasets.rollouts import ParticleRolloutFile, code_version, write_particle_rollout
from training.precision import autocast
from training.report import mean_and_spread


@dataclass
class Rollout:
    """A predicted trajectory beside the ground truth; ``predicted [T, N, D]`` from frame ``history`` on."""

    initial_positions: np.ndarray        # [C, N, D] the frames the model starts from
    predicted: np.ndarray                # [T, N, D]
    ground_truth: np.ndarray             # [T, N, D]
    particle_type: np.ndarray            # [N]
    seconds_per_frame: float
    diverged_at: int | None = None       # first step with NaN/inf, if any; later frames are NaN
    errors: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.errors = per_step_errors(self.predicted, self.ground_truth)


def per_step_errors(predicted: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Position MSE per step ``[T]`` and kinetic-energy error per step (per-frame velocity units)."""
    mse = ((predicted - truth) ** 2).mean(axis=(1, 2))

    def kinetic(x: np.ndarray) -> np.ndarray:
        return 0.5 * (np.diff(x, axis=0) ** 2).sum(axis=(1, 2))

    ke_pred, ke_true = kinetic(predicted), kinetic(truth)
    return {"position_mse": mse, "kinetic_energy": ke_pred, "kinetic_energy_truth": ke_true,
            "kinetic_energy_error": np.abs(ke_pred - ke_true) / np.maximum(ke_true, 1e-30)}


@torch.no_grad()
def learned_rollout(model: torch.nn.Module, positions: np.ndarray, particle_type: np.ndarray,
                    history: int = 6, device: str = "cpu", precision: str = "auto") -> Rollout:
    """Roll ``model`` out from the first ``history`` frames of ``positions [T, N, D]`` to frame T - 1.

    Kinematic particles (type 3) follow the ground truth. A NaN/inf stops the rollout; the remaining
    frames are NaN and ``diverged_at`` names the step. The network runs in ``precision`` (auto, fp32, bf16);
    positions and the integration stay float32. ``seconds_per_frame`` times the steps after the first (a
    warm-up, as the solvers get).
    """
    model.eval()
    truth = torch.from_numpy(positions.astype(np.float32)).to(device)
    types = torch.from_numpy(particle_type).to(device)
    batch = torch.zeros(len(particle_type), dtype=torch.long, device=device)
    kinematic = types == 3
    window = truth[:history].transpose(0, 1).clone()  # [N, C, D]
    steps = positions.shape[0] - history
    out = torch.full((steps,) + tuple(truth.shape[1:]), float("nan"), device=device)
    diverged = None
    t0, untimed = time.perf_counter(), 0
    for t in range(steps):
        if t == 1:  # as for the solvers, the first step (allocations, kernel choice) is a warm-up, not timed
            t0, untimed = time.perf_counter(), 1
        with autocast(precision, device):
            acc = model(window, types, batch)
        nxt = model.next_position(window, acc.float())
        nxt = torch.where(kinematic[:, None], truth[history + t], nxt)
        if not torch.isfinite(nxt).all():
            diverged = t
            break
        out[t] = nxt
        window = torch.cat([window[:, 1:], nxt[:, None]], dim=1)
    elapsed = (time.perf_counter() - t0) / max(1, (steps if diverged is None else diverged) - untimed)
    return Rollout(positions[:history], out.cpu().numpy(), positions[history:], particle_type, elapsed, diverged)


def constant_velocity(positions: np.ndarray, particle_type: np.ndarray, history: int = 6) -> Rollout:
    """The baseline every simulator must beat: keep the last observed velocity forever."""
    t0 = time.perf_counter()
    last, velocity = positions[history - 1], positions[history - 1] - positions[history - 2]
    steps = np.arange(1, positions.shape[0] - history + 1)[:, None, None]
    predicted = last[None] + steps * velocity[None]
    elapsed = (time.perf_counter() - t0) / len(steps)
    return Rollout(positions[:history], predicted, positions[history:], particle_type, elapsed)


def ballistic(positions: np.ndarray, particle_type: np.ndarray, bounds: np.ndarray, gravity: float, dt: float,
              history: int = 6) -> Rollout:
    """The baseline a particle simulator under gravity must beat: free fall from the last observed velocity,
    clamped to the tank, with the velocity component into a wall zeroed on contact. Exact while drops fall.

    Args:
        positions: ``[T, N, D]`` in m; frames ``history - 2`` and ``history - 1`` give the start.
        particle_type: ``[N]``, carried into the rollout.
        bounds: ``[D, 2]`` tank limits in m.
        gravity: m/s^2 along -y (the second axis).
        dt: seconds per frame.
    """
    t0 = time.perf_counter()
    x, v = positions[history - 1].copy(), positions[history - 1] - positions[history - 2]  # m per frame
    kick = np.zeros(positions.shape[-1])
    kick[1] = -gravity * dt ** 2
    predicted = np.empty((positions.shape[0] - history,) + x.shape)
    for t in range(len(predicted)):
        v = v + kick
        x = x + v
        outside = (x < bounds[:, 0]) | (x > bounds[:, 1])
        x = np.clip(x, bounds[:, 0], bounds[:, 1])
        v = np.where(outside, 0.0, v)
        predicted[t] = x
    elapsed = (time.perf_counter() - t0) / max(1, len(predicted))
    return Rollout(positions[:history], predicted, positions[history:], particle_type, elapsed)


def summary(rollouts: list[Rollout], at: int = 20) -> dict[str, float]:
    """Means over trajectories with their standard deviations (``{key}_std``): rollout MSE over all steps, MSE
    at step ``at`` (NaN for rollouts shorter than that), one-step MSE, KE error, time per frame; and how many
    diverged. A diverged rollout's NaN errors make the mean NaN ("diverges"), not a mean of the others."""
    def at_step(r: Rollout) -> float:
        errors = r.errors["position_mse"]
        return float(errors[at - 1]) if len(errors) >= at else float("nan")

    per_trajectory = [{"rollout_mse": float(np.mean(r.errors["position_mse"])), f"mse_at_{at}": at_step(r),
                       "one_step_mse": float(r.errors["position_mse"][0]),
                       "kinetic_energy_error": float(np.mean(r.errors["kinetic_energy_error"])),
                       "seconds_per_frame": r.seconds_per_frame} for r in rollouts]
    return {**mean_and_spread(per_trajectory, skip_nan=False),
            "diverged": float(sum(r.diverged_at is not None for r in rollouts))}


def export_rollout(path: str | os.PathLike, rollout: Rollout, metadata: dict, model_config: dict) -> Path:
    """Write one rollout atomically in the ``particle-rollout`` schema."""
    return write_particle_rollout(path, ParticleRolloutFile(
        rollout.initial_positions, rollout.predicted, rollout.ground_truth, rollout.particle_type, rollout.errors,
        rollout.seconds_per_frame, rollout.diverged_at, metadata, model_config, code_version()))
