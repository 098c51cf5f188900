"""Rollouts of a MeshGraphNet and of the baselines it must beat, and their errors over the paper's horizons.

Several trajectories roll out as one batch (their meshes side by side, as in training): the evaluation rolls
out one trajectory at a time to time it, training's validation rolls all of them at once.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from datasets.meshes import MeshTrajectory
from gnn.scatter import scatter_mean
from sims.constraints import StrainLimiter
from sims.mesh import rest_lengths
from sims.mesh_samples import FIELDS, collate, forcing_at, frame_state
from sims.meshgraphnet import MeshGraphNet, MeshState, undirected_edges
from sims.solvers.cylinder_flow import shedding_period
from training.precision import autocast

HORIZONS = (1, 10, 20, 50, 100, 200)


@dataclass
class MeshRollout:
    """``predicted`` and ``ground_truth`` ``[T, N, F]`` from the frame after ``start`` on."""

    start: int
    predicted: np.ndarray
    ground_truth: np.ndarray
    seconds_per_frame: float
    diverged_at: int | None = None

    @property
    def squared_error(self) -> np.ndarray:
        """``[T]``: mean over nodes and components of the squared error."""
        return ((self.predicted - self.ground_truth) ** 2).mean(axis=(1, 2))

    def rmse(self) -> dict[str, float]:
        """RMSE over the first h steps for each horizon the rollout reaches, and over all steps."""
        err = self.squared_error
        out = {f"rmse_{h}": float(np.sqrt(err[:h].mean())) for h in HORIZONS if h <= len(err)}
        out["rmse_all"] = float(np.sqrt(err.mean()))
        return out


def first_frame(kind: str) -> int:
    """The first frame a rollout can start from: 0 (flow), 1 (cloth needs the previous position)."""
    return 0 if kind == "flow" else 1


class RolloutStep:
    """One step of a model's rollout on a batch of meshes, shared by the rollouts and by training's
    pushforward: ``step(state, prescribed) -> [N, F]`` float32, the network's next frame with the nodes
    outside its loss mask set from ``prescribed [N, F]`` (the ground truth's next frame) and, for a cloth
    model with a ``strain_limit``, projected onto edge strains within it
    (:class:`sims.constraints.StrainLimiter`), or onto its predicted strains if it has a ``strain_output``
    (the two directions of each edge averaged).

    Args:
        model: the network (eval mode).
        state: a state of the batch of meshes the steps will advance (its mesh and node types).
    """

    def __init__(self, model: MeshGraphNet, state: MeshState) -> None:
        self.model, self.prescribed = model, ~model.loss_mask(state)
        self.limiter: StrainLimiter | None = None
        if model.cfg.strain_limit:  # cloth: every mesh edge once
            edges, self.edge_of = undirected_edges(state)
            self.limiter = StrainLimiter(edges.numpy(), rest_lengths(state.mesh_pos.numpy(), edges.numpy()),
                                         (~self.prescribed).numpy(), model.cfg.strain_limit,
                                         sweeps=model.cfg.strain_sweeps)

    @torch.no_grad()
    def __call__(self, state: MeshState, prescribed: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        model, strain = self.model, None
        if model.cfg.strain_output:
            prediction, directed = model(state, with_strain=True)
            nxt = model.next_frame(state, prediction.float())
            strain = scatter_mean(model.strain_norm.inverse(directed.float())[:, 0], self.edge_of,
                                  len(self.limiter.edges))
        else:
            nxt = model.advance(state, generator).float()
        nxt[self.prescribed] = prescribed[self.prescribed].to(nxt.dtype)
        return nxt if self.limiter is None else self.limiter(nxt, strain)


@torch.no_grad()
def mgn_rollouts(model: MeshGraphNet, trajectories: list[MeshTrajectory], steps: int | None = None,
                 precision: str = "auto", seed: int = 0) -> list[MeshRollout]:
    """Roll the model out on several trajectories at once from the first frame it can start from, for
    ``steps`` steps (None: as far as the shortest trajectory goes). Nodes outside its loss mask (walls,
    inflow, obstacle, the flag's pole) and the forcing (the flag's wind) follow the ground truth. A NaN
    stops a trajectory: its later frames stay NaN and ``diverged_at`` says when. The network runs in
    ``precision`` (auto, fp32, bf16); the fields and their update stay float32. ``seconds_per_frame`` is
    the batch's wall-clock per step after the first (a warm-up) divided by the number of trajectories. A
    model that samples (the refiner) draws its noise from a generator seeded with ``seed``: other seeds give
    an ensemble. Each step is a :class:`RolloutStep` (a cloth model's strain projection is part of the timing).

    Args:
        model: a trained network (eval mode).
        trajectories: meshes of the model's kind, each with enough frames.
        steps: rollout length.
        precision: the network's precision.
        seed: the sampling noise's seed.
    """
    kind = model.cfg.kind
    field, start = FIELDS[kind], first_frame(kind)
    truths = [traj.fields[field] for traj in trajectories]
    steps = min([steps or len(t) for t in truths] + [len(t) - 1 - start for t in truths])
    state = collate([frame_state(traj, start, kind) for traj in trajectories])
    sizes = [len(t.mesh_pos) for t in trajectories]
    truth = torch.as_tensor(np.concatenate([t[start + 1:start + 1 + steps] for t in truths], axis=1),
                            dtype=torch.float32)
    forcing = [torch.cat([forcing_at(traj, start + t + 1) for traj in trajectories])
               for t in range(steps)] if state.forcing is not None else None
    step = RolloutStep(model, state)
    out = np.full((steps, *truth.shape[1:]), np.nan)
    alive = np.ones(len(trajectories), bool)
    diverged: list[int | None] = [None] * len(trajectories)
    generator = torch.Generator().manual_seed(seed)
    t0, taken, untimed = time.perf_counter(), 0, 0
    for t in range(steps):
        if t == 1:  # as for the solvers, the first step (allocations, kernel choice) is a warm-up, not timed
            t0, untimed = time.perf_counter(), 1
        with autocast(precision, "cpu"):
            nxt = step(state, truth[t], generator)
        finite = np.array([bool(torch.isfinite(part).all()) for part in torch.split(nxt, sizes)])
        for k in np.flatnonzero(alive & ~finite):
            diverged[k], alive[k] = t, False
        if not alive.any():
            break
        out[t] = nxt.numpy()
        taken += 1
        state = state.step_to(nxt)
        if forcing is not None:  # the external forcing is known, like the prescribed nodes
            state = state.replace(forcing=forcing[t])
    elapsed = (time.perf_counter() - t0) / max(1, taken - untimed) / len(trajectories)
    rollouts = []
    for k, part in enumerate(np.split(out, np.cumsum(sizes)[:-1], axis=1)):
        if diverged[k] is not None:
            part[diverged[k]:] = np.nan
        rollouts.append(MeshRollout(start, part, truths[k][start + 1:start + 1 + steps], elapsed, diverged[k]))
    return rollouts


def ensemble_mean(members: list[MeshRollout]) -> tuple[MeshRollout, np.ndarray]:
    """The ensemble-mean rollout of ``members`` (rollouts of one trajectory with different noise) and the
    ensemble spread per step ``[T]``: ``sqrt((M + 1) / M * mean_nodes var_members)``, which equals the
    ensemble mean's RMSE for a reliable ensemble of M members (Fortin et al. 2014).

    Args:
        members: at least two rollouts of the same trajectory and length.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    stacked = np.stack([m.predicted for m in members])
    size = len(members)
    spread = np.sqrt((size + 1) / size * stacked.var(axis=0, ddof=1).mean(axis=(1, 2)))
    first = members[0]
    seconds = sum(m.seconds_per_frame for m in members)
    return MeshRollout(first.start, stacked.mean(axis=0), first.ground_truth, seconds), spread


def frozen_rollout(kind: str, traj: MeshTrajectory, steps: int) -> MeshRollout:
    """The baseline: the velocity field stays as it is (flow); every node keeps its velocity (cloth)."""
    truth = traj.fields[FIELDS[kind]]
    start = first_frame(kind)
    n = np.arange(1, steps + 1)[:, None, None]
    predicted = np.repeat(truth[start][None], steps, 0) if kind == "flow" else \
        truth[start][None] + n * (truth[start] - truth[start - 1])[None]
    return MeshRollout(start, predicted, truth[start + 1:start + 1 + steps], 0.0)


def wake_period_error(rollouts: list[MeshRollout], probes: list[int], min_amplitudes: list[float] | None = None
                      ) -> float:
    """The shedding frequency's error of flow rollouts: over the rollouts whose true wake oscillates (two or
    more upward zero crossings of the cross-stream velocity at their probe node, with an RMS above the
    rollout's ``min_amplitude``), the mean of ``|T_model / T_true - 1|`` of the period
    (:func:`sims.solvers.cylinder_flow.shedding_period`), capped at 1, which is also what a rollout whose
    wake does not oscillate scores. The Strouhal number's relative error is
    ``T_true / T_model - 1``; its size is the same to first order. NaN if no true wake oscillates.

    Args:
        rollouts: flow rollouts (``predicted``, ``ground_truth`` ``[T, N, 2]``).
        probes: a node in each rollout's wake (:func:`sims.solvers.cylinder_flow.wake_probe`).
        min_amplitudes: each rollout's steady-wake threshold (m/s; ``STEADY_WAKE`` x its mean inflow,
            :func:`sims.solvers.cylinder_flow.shedding_period`); None: any oscillation counts.
    """
    errors = []
    for rollout, probe, steady in zip(rollouts, probes, min_amplitudes or [0.0] * len(probes)):
        true = shedding_period(rollout.ground_truth[:, probe, 1], 1.0, steady)
        if np.isnan(true):
            continue
        model = shedding_period(np.nan_to_num(rollout.predicted[:, probe, 1]), 1.0, steady)
        errors.append(1.0 if np.isnan(model) else min(abs(model / true - 1.0), 1.0))
    return float(np.mean(errors)) if errors else float("nan")


def validation_rollout_rmse(trajectories: list[MeshTrajectory], steps: int = 50, wake_probes: list[int] | None = None,
                            min_amplitudes: list[float] | None = None):
    """An evaluation metric for the Trainer (``eval_metrics``): ``rollout_rmse``, the RMSE over the first
    ``steps`` steps (fewer if a trajectory is shorter) of rollouts of all ``trajectories`` at once, infinite
    if any diverges: what the evaluation reports, and by default what selects checkpoints. With
    ``wake_probes`` (flow) also ``wake_period_error`` (:func:`wake_period_error`) of the same rollouts, to
    select by the shedding frequency instead (``--select-by wake_period_error``).

    Args:
        trajectories: validation trajectories with at least ``steps`` + 2 frames.
        steps: the horizon.
        wake_probes: a node in each trajectory's wake, or None.
        min_amplitudes: each trajectory's steady-wake threshold (:func:`wake_period_error`).
    """
    def metric(model: torch.nn.Module) -> dict[str, float]:
        rollouts = mgn_rollouts(model, trajectories, steps)
        errors = [r.squared_error.mean() if r.diverged_at is None else np.inf for r in rollouts]
        out = {"rollout_rmse": float(np.sqrt(np.mean(errors)))}
        if wake_probes is not None:
            out["wake_period_error"] = wake_period_error(rollouts, wake_probes, min_amplitudes)
        return out

    return metric
