"""Evaluate a trained MeshGraphNet on held-out trajectories with the paper's protocol: RMSE of the rolled-out
field averaged over the first 1, 10, 20, 50, 100 and 200 steps and over the whole rollout, beside the
"nothing changes" baseline (frozen velocity field; cloth keeping its last velocity), as mean ± standard
deviation over test trajectories; a physics check against the solver (the Strouhal number of the shedding,
the cloth's mean edge strain); and the wall-clock per frame of the model against our solver on the same
mesh. Exports every rollout (``mesh-rollout`` HDF5) and
pictures: the speed field on the mesh or the cloth surface, solver against model, as PNG strips and GIFs.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from datasets.meshes import MeshTrajectory, MeshTrajectoryReader
from datasets.rollouts import MeshRolloutFile, code_version, write_mesh_rollout
from sims import plots
from sims.mesh import edge_strain, mesh_edges
from sims.mesh_rollout import HORIZONS, MeshRollout, ensemble_mean, frozen_rollout, mgn_rollouts
from sims.mesh_samples import FIELDS
from sims.refiner import MeshRefiner
from sims.solvers.cylinder_flow import (STEADY_WAKE, CylinderFlow, saved_channel, shedding_period, strouhal_number,
                                       wake_probe)
from sims.solvers.flag import FlagConfig, make_flag, simulate_flag
from sims.train_mgn import RECIPE
from training.config import to_dict
from training.inference import compile_network
from training.recipe import load
from training.report import Column, Report, mean_and_spread


def physics(kind: str, traj: MeshTrajectory, frames: np.ndarray, metadata: dict, index: int) -> dict[str, float]:
    """What a physicist checks in a rollout ``frames [T, N, F]`` besides its error: the Strouhal number of
    the shedding at the wake probe (flow; NaN for a steady wake, ``STEADY_WAKE``), or the mean edge strain
    ``|x_i - x_j| / L_ij - 1`` over mesh edges and frames, rest lengths ``L`` from the mesh (cloth)."""
    if kind == "flow":
        channel = saved_channel(metadata["trajectory_params"][index])
        period = shedding_period(frames[:, wake_probe(channel, traj.mesh_pos), 1], float(metadata["dt"]),
                                 STEADY_WAKE * channel.mean_inflow)
        return {"strouhal": strouhal_number(channel, period)}
    return {"mean_strain": float(edge_strain(frames, mesh_edges(traj.cells), traj.mesh_pos).mean())}


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
    channel = saved_channel(params)
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
             compile: str = "auto", ensemble: int = 1) -> Report:
    """Roll out on ``data_file``, export and draw; returns and writes a report with one row per method.
    ``precision``, ``compile`` and ``ensemble`` as in :func:`sims.evaluate.evaluate`: with an ensemble, the
    members of a trajectory roll out as one batch (the time per frame is per member), the first is scored
    and exported, and an extra row scores the ensemble mean, with its spread against its error per step in
    ``spread_vs_error.png``."""
    model, run = load(run_dir, [RECIPE])
    refined = isinstance(model, MeshRefiner)
    if ensemble < 1 or (ensemble > 1 and not refined):
        raise ValueError(f"ensemble must be 1, or more for a model with a PDE-Refiner; got {ensemble}")
    compile_network(model.net, compile, "cpu")
    out_dir = Path(out_dir)
    kind, field = model.cfg.kind, FIELDS[model.cfg.kind]
    rows: dict[str, list[dict]] = {"mgn": [], "ensemble": [], "frozen": [], "solver": []}
    squares = {"ensemble mean error": 0.0, "ensemble spread": 0.0}  # summed over trajectories, per step
    with MeshTrajectoryReader(data_file) as reader:
        count = min(max_trajectories, len(reader))
        for i in tqdm(range(count), desc="mesh rollouts"):
            traj = reader[i]
            members = mgn_rollouts(model, [traj] * ensemble, max_steps, precision, seed=i)
            learned = members[0]
            if ensemble > 1:
                mean, spread = ensemble_mean(members)
                rows["ensemble"].append({**mean.rmse(), "spread_all": float(np.sqrt(np.mean(spread ** 2)))})
                squares["ensemble mean error"] += mean.squared_error / count
                squares["ensemble spread"] += spread ** 2 / count
            frozen = frozen_rollout(kind, traj, len(learned.predicted))
            export_mesh_rollout(out_dir / f"rollout_{i:03d}.h5", traj, learned, field, reader.metadata, to_dict(run))
            reference = physics(kind, traj, learned.ground_truth, reader.metadata, i)
            rows["solver"].append(reference)
            for key, rollout in (("mgn", learned), ("frozen", frozen)):
                measured = physics(kind, traj, rollout.predicted, reader.metadata, i)
                rows[key].append({**rollout.rmse(), **measured, **{
                    f"{name}_error": abs(measured[name] / reference[name] - 1) for name in measured}})
            rows["mgn"][-1].update(seconds_per_frame=learned.seconds_per_frame,
                                   diverged=float(learned.diverged_at is not None))
            if with_solver:
                rows["solver"][-1]["seconds_per_frame"] = solver_seconds_per_frame(reader.metadata, i, traj)
            if i == 0:
                _draw(out_dir, traj, learned, kind)
    unit = "m/s" if kind == "flow" else "m"
    reached = [h for h in HORIZONS if f"rmse_{h}" in rows["mgn"][0]]
    columns = [Column(f"rmse_{h}", f"RMSE {h} step{'s' * (h > 1)}", unit, ".3g", spread=f"rmse_{h}_std")
               for h in reached]
    check = "strouhal" if kind == "flow" else "mean_strain"
    columns += [Column("rmse_all", "RMSE all steps", unit, ".3g", spread="rmse_all_std"),
                Column(check, "Strouhal number" if kind == "flow" else "mean edge strain", "", ".3g",
                       spread=f"{check}_std"),
                Column(f"{check}_within_5pct", "within 5% of the solver's" + " (shedding wakes)" * (kind == "flow"),
                       "", ".2f"),
                Column("seconds_per_frame", "time per frame", "s")]
    if ensemble > 1:
        columns.append(Column("spread_all", "ensemble spread all steps", unit, ".3g", spread="spread_all_std"))
    report = Report(f"MeshGraphNet ({kind}) rollouts of {field} on {Path(data_file).name}", columns,
                    info={"run_dir": str(run_dir), "data_file": str(data_file), "trajectories": count,
                          "out": str(out_dir)})
    frozen_label = "frozen (no change)" if kind == "flow" else "constant velocity"
    name = f"MeshGraphNet + PDE-Refiner (K={model.cfg.refinement_steps})" if refined else "MeshGraphNet"
    for key, label in (("mgn", name), ("ensemble", f"{name}, mean of {ensemble}"), ("frozen", frozen_label),
                       ("solver", "solver")):
        if not rows[key]:
            continue
        values = mean_and_spread(rows[key])
        if key in ("mgn", "frozen"):  # share of the trajectories with a solver value (a shedding wake) whose
            judged = [r[f"{check}_error"] <= 0.05  # check is within 5% of it (a NaN of the model's: not)
                      for r, solver in zip(rows[key], rows["solver"]) if np.isfinite(solver[check])]
            values[f"{check}_within_5pct"] = float(np.mean(judged)) if judged else float("nan")
        report.add(key, label, values)
    report.extra[f"{check}_per_trajectory"] = {key: [r[check] for r in rows[key]]
                                               for key in ("mgn", "frozen", "solver")}
    if ensemble > 1:
        plots.error_curves(out_dir / "spread_vs_error.png", {k: np.sqrt(v) for k, v in squares.items()},
                           ylabel=f"{field} RMSE / spread [{unit}]")
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

