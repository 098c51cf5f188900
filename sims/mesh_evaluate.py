"""Evaluate a trained MeshGraphNet on held-out trajectories with the paper's protocol: RMSE of the rolled-out
field averaged over the first 1, 10, 20, 50, 100 and 200 steps and over the whole rollout, beside the
"nothing changes" baseline (frozen velocity field; cloth keeping its last velocity) and the wall-clock per
frame of the model against our solver on the same mesh. Exports every rollout (``mesh-rollout`` HDF5) and
pictures: the speed field on the mesh or the cloth surface, solver against model, as PNG strips and GIFs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from datasets.meshes import MeshTrajectory, MeshTrajectoryReader
from datasets.rollouts import MeshRolloutFile, code_version, write_mesh_rollout
from sims import plots
from sims.mesh_samples import FIELDS, frame_state
from sims.meshgraphnet import MeshGraphNet
from sims.solvers.cylinder_flow import Channel, CylinderFlow
from sims.solvers.flag import FlagConfig, make_flag, simulate_flag
from sims.train_mgn import RECIPE
from training.config import to_dict
from training.inference import compile_network
from training.precision import autocast
from training.recipe import load
from training.report import Column, Report

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


@torch.no_grad()
def mgn_rollout(model: MeshGraphNet, traj: MeshTrajectory, steps: int | None = None,
                precision: str = "auto") -> MeshRollout:
    """Roll the model out from the first frame it can start from; nodes outside its loss mask (walls,
    inflow, obstacle, the flag's pole) follow the ground truth. A NaN stops it; later frames stay NaN.
    The network runs in ``precision`` (auto, fp32, bf16); the fields and their update stay float32."""
    kind = model.cfg.kind
    truth = traj.fields[FIELDS[kind]]
    start = 0 if kind == "flow" else 1
    steps = min(steps or len(truth), len(truth) - 1 - start)
    state = frame_state(traj, start, kind)
    prescribed = ~model.loss_mask(state)
    out = np.full((steps, *truth.shape[1:]), np.nan)
    diverged = None
    t0 = time.perf_counter()
    for t in range(steps):
        with autocast(precision, "cpu"):
            nxt = model.advance(state).float()
        nxt[prescribed] = torch.as_tensor(truth[start + t + 1][prescribed.numpy()], dtype=nxt.dtype)
        if not torch.isfinite(nxt).all():
            diverged = t
            break
        out[t] = nxt.numpy()
        state = state.replace(velocity=nxt) if kind == "flow" else \
            state.replace(prev_world_pos=state.world_pos, world_pos=nxt)
    elapsed = (time.perf_counter() - t0) / max(1, steps if diverged is None else diverged)
    return MeshRollout(start, out, truth[start + 1:start + 1 + steps], elapsed, diverged)


def frozen_rollout(kind: str, traj: MeshTrajectory, steps: int) -> MeshRollout:
    """The baseline: the velocity field stays as it is (flow); every node keeps its velocity (cloth)."""
    truth = traj.fields[FIELDS[kind]]
    start = 0 if kind == "flow" else 1
    n = np.arange(1, steps + 1)[:, None, None]
    predicted = np.repeat(truth[start][None], steps, 0) if kind == "flow" else \
        truth[start][None] + n * (truth[start] - truth[start - 1])[None]
    return MeshRollout(start, predicted, truth[start + 1:start + 1 + steps], 0.0)


def solver_seconds_per_frame(metadata: dict, index: int, traj: MeshTrajectory, frames: int = 10) -> float:
    """Wall-clock of our solver per output frame on this trajectory's mesh and parameters."""
    params = metadata["trajectory_params"][index]
    dt = float(metadata["dt"])
    if metadata["solver"] == "flag":
        flag = make_flag(FlagConfig(**params))
        simulate_flag(flag, 2)  # compile
        t0 = time.perf_counter()
        simulate_flag(flag, frames + 1)
        return (time.perf_counter() - t0) / frames
    channel = Channel(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
    substeps = int(metadata["substeps"][index])
    flow = CylinderFlow(channel, traj.mesh_pos, traj.cells, dt / substeps)
    t0 = time.perf_counter()
    for _ in range(frames * substeps):
        flow.step()
    return (time.perf_counter() - t0) / frames


def export_mesh_rollout(path: Path, traj: MeshTrajectory, rollout: MeshRollout, field: str, metadata: dict,
                        model_config: dict) -> Path:
    """Write one rollout atomically in the ``mesh-rollout`` schema (docs/schemas.md)."""
    return write_mesh_rollout(path, MeshRolloutFile(
        field, metadata["fields"][field], rollout.start, rollout.predicted, rollout.ground_truth, rollout.squared_error,
        traj.mesh_pos, traj.cells, traj.node_type, rollout.seconds_per_frame, rollout.diverged_at, metadata,
        model_config, code_version()))


def evaluate(run_dir: str | Path, data_file: str | Path, out_dir: str | Path, max_trajectories: int = 4,
             max_steps: int | None = None, with_solver: bool = True, precision: str = "auto",
             compile: str = "auto") -> Report:
    """Roll out on ``data_file``, export and draw; returns and writes a report with one row per method.
    ``precision`` and ``compile`` as in :func:`sims.evaluate.evaluate`."""
    model, run = load(run_dir, [RECIPE])
    compile_network(model.net, compile, "cpu")
    out_dir = Path(out_dir)
    kind, field = model.cfg.kind, FIELDS[model.cfg.kind]
    rows: dict[str, list[dict]] = {"mgn": [], "frozen": []}
    solver_times = []
    with MeshTrajectoryReader(data_file) as reader:
        count = min(max_trajectories, len(reader))
        for i in tqdm(range(count), desc="mesh rollouts"):
            traj = reader[i]
            learned = mgn_rollout(model, traj, max_steps, precision)
            frozen = frozen_rollout(kind, traj, len(learned.predicted))
            export_mesh_rollout(out_dir / f"rollout_{i:03d}.h5", traj, learned, field, reader.metadata, to_dict(run))
            rows["mgn"].append({**learned.rmse(), "seconds_per_frame": learned.seconds_per_frame,
                                "diverged": float(learned.diverged_at is not None)})
            rows["frozen"].append(frozen.rmse())
            if with_solver:
                solver_times.append(solver_seconds_per_frame(reader.metadata, i, traj))
            if i == 0:
                _draw(out_dir, traj, learned, kind)
    unit = "m/s" if kind == "flow" else "m"
    reached = [h for h in HORIZONS if f"rmse_{h}" in rows["mgn"][0]]
    columns = [Column(f"rmse_{h}", f"RMSE {h} step{'s' * (h > 1)}", unit, ".4g") for h in reached]
    columns += [Column("rmse_all", "RMSE all steps", unit, ".4g"), Column("seconds_per_frame", "time per frame", "s")]
    report = Report(f"MeshGraphNet ({kind}) rollouts of {field} on {Path(data_file).name}", columns,
                    info={"run_dir": str(run_dir), "data_file": str(data_file), "trajectories": count,
                          "out": str(out_dir)})
    frozen_label = "frozen (no change)" if kind == "flow" else "constant velocity"
    for key, label in (("mgn", "MeshGraphNet"), ("frozen", frozen_label)):
        report.add(key, label, {k: float(np.mean([r[k] for r in rows[key]])) for k in rows[key][0]})
    if solver_times:
        report.add("solver", "solver (reference cost)", {"seconds_per_frame": float(np.mean(solver_times))})
    report.write(out_dir)
    return report


def _draw(out_dir: Path, traj: MeshTrajectory, rollout: MeshRollout, kind: str) -> None:
    truth, predicted = rollout.ground_truth, np.nan_to_num(rollout.predicted)
    if kind == "flow":
        draw = plots.speed_field(traj.mesh_pos, traj.cells, float(np.linalg.norm(truth, axis=-1).max()))
        plots.frame_strip(out_dir / "rollout_000.png", truth, predicted, draw, frames=3, size=(4.5, 1.4))
        plots.animation(out_dir / "rollout_000.gif", truth, predicted, draw, stride=4, size=(9, 1.8))
    else:
        limits = np.stack([truth.min(axis=(0, 1)), truth.max(axis=(0, 1))], axis=1)
        draw = plots.cloth(traj.cells, limits)
        plots.frame_strip(out_dir / "rollout_000.png", truth, predicted, draw, three_d=True, size=(2.6, 2.6))
        plots.animation(out_dir / "rollout_000.gif", truth, predicted, draw, stride=4, three_d=True)
    curves = {"MeshGraphNet": rollout.squared_error}
    plots.error_curves(out_dir / "error_vs_step.png", curves, ylabel=f"{FIELDS[kind]} MSE")

