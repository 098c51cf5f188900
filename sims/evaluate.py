"""Evaluate a trained GNS on held-out trajectories against constant velocity, the solver at the
model's frame rate, and the solver's own cost per frame; export rollouts and pictures."""
from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from datasets.atomic import atomic_open
from datasets.trajectories import TrajectoryReader
from sims import plots
from sims.data import WATER_OFFSET
from sims.gns import GNS, GNSConfig
from sims.rollout import Rollout, constant_velocity, export_rollout, learned_rollout, summary
from sims.solvers.sph import SPH, SPHConfig
from training.checkpoint import load_run


def load_gns(run_dir: str | Path, device: str = "cpu") -> tuple[GNS, dict]:
    """The model of a GNS run folder, from its config.json and newest checkpoint."""
    config, state = load_run(run_dir, "train-gns")
    model = GNS(GNSConfig(**config["gns"]), config["metadata"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config


def solver_rollout(metadata: dict, positions: np.ndarray, particle_type: np.ndarray, history: int,
                   substeps: int | None) -> Rollout:
    """The SPH solver restarted from frame ``history - 1`` (velocity from the last two frames).

    ``substeps=None`` lets the solver take its CFL-limited steps (its real cost per frame); ``substeps=1``
    forces one step per frame, the learned model's frame rate.
    """
    cfg = SPHConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in metadata["solver_params"].items()})
    dt = float(metadata["dt"])
    start = positions[history - 1] - WATER_OFFSET
    velocity = (positions[history - 1] - positions[history - 2]) / dt
    sph = SPH(cfg, np.clip(start, 0.0, np.asarray(cfg.box)), velocity)
    steps = positions.shape[0] - history
    out = np.full((steps,) + start.shape, np.nan)
    diverged = None
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        for t in range(steps):
            if substeps is None:
                sph.advance(dt)
            else:
                for _ in range(substeps):
                    sph.step(dt / substeps)
            x = sph.fluid_positions + WATER_OFFSET
            if not np.isfinite(x).all() or np.abs(x).max() > 1e3:
                diverged = t
                break
            out[t] = x
    elapsed = (time.perf_counter() - t0) / max(1, steps if diverged is None else diverged)
    return Rollout(positions[:history], out, positions[history:], particle_type, elapsed, diverged)


def evaluate(run_dir: str | Path, data_file: str | Path, out_dir: str | Path, max_trajectories: int = 4,
             max_steps: int | None = None, with_solver: bool = True) -> dict[str, dict[str, float]]:
    """Roll out every method on the first ``max_trajectories`` of ``data_file``; write rollouts, metrics and
    pictures to ``out_dir``; return ``{method: summary}``."""
    model, config = load_gns(run_dir)
    history = model.cfg.history
    out_dir = Path(out_dir)
    results: dict[str, list[Rollout]] = {"learned (GNS)": [], "constant velocity": []}
    if with_solver:
        results["solver, 1 step per frame"] = []
        results["solver (reference cost)"] = []
    with TrajectoryReader(data_file) as reader:
        metadata = reader.metadata
        count = min(max_trajectories, len(reader))
        for k in tqdm(range(count), desc="evaluate"):
            traj = reader[k]
            positions = traj.position[: (history + max_steps) if max_steps else None].astype(np.float64)
            learned = learned_rollout(model, positions, traj.particle_type, history)
            results["learned (GNS)"].append(learned)
            results["constant velocity"].append(constant_velocity(positions, traj.particle_type, history))
            if with_solver and "solver_params" in metadata:
                results["solver, 1 step per frame"].append(
                    solver_rollout(metadata, positions, traj.particle_type, history, substeps=1))
                results["solver (reference cost)"].append(
                    solver_rollout(metadata, positions[: history + 10], traj.particle_type, history, None))
            export_rollout(out_dir / f"rollout_{k:03d}.h5", learned, metadata, config)
            if k == 0:
                bounds = np.asarray(metadata["bounds"])
                draw = plots.particles(bounds)
                plots.frame_strip(out_dir / "rollout_000.png", learned.ground_truth, learned.predicted, draw)
                plots.animation(out_dir / "rollout_000.gif", learned.ground_truth, learned.predicted, draw)
    table = {name: summary(rolls) for name, rolls in results.items() if rolls}
    plots.error_curves(out_dir / "error_vs_step.png", mean_curves(results, "position_mse"))
    plots.error_curves(out_dir / "kinetic_energy_error_vs_step.png", mean_curves(results, "kinetic_energy_error"),
                       ylabel="relative kinetic-energy error")
    with atomic_open(out_dir / "metrics.json") as fh:
        json.dump(table, fh, indent=2)
    with atomic_open(out_dir / "metrics.md") as fh:
        fh.write(format_table(table) + "\n")
    return table


def mean_curves(results: dict[str, list[Rollout]], error: str) -> dict[str, np.ndarray]:
    """Per-step mean of one error over each method's rollouts (diverged steps ignored; all-diverged: NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {name: np.nanmean([r.errors[error] for r in rolls], axis=0)
                for name, rolls in results.items() if rolls and name != "solver (reference cost)"}


def format_table(table: dict[str, dict[str, float]]) -> str:
    cols = ["one_step_mse", "mse_at_20", "rollout_mse", "kinetic_energy_error", "seconds_per_frame", "diverged"]
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, row in table.items():
        cells = [f"{row[c]:.3g}" if not (isinstance(row[c], float) and math.isnan(row[c])) else "n/a" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
