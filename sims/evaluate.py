"""Evaluate a trained learned simulator on held-out trajectories: a GNS against constant velocity, ballistic
motion with walls (gravity from the dataset's solver parameters), the solver at the model's cost (as many
fixed steps per frame as fit in the model's time per frame) and the solver's own cost per frame (10 frames:
its 20-step column stays empty); a MeshGraphNet through :mod:`sims.mesh_evaluate`. Rollouts are exported to
HDF5, with pictures and a :class:`Report`."""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from datasets.atomic import refuse_overwriting_inputs
from datasets.trajectories import TrajectoryReader
from sims import mesh_data, mesh_evaluate, plots, train_gns, train_mgn
from sims.data import WATER_OFFSET, generate_waterdrop
from sims.rollout import Rollout, ballistic, constant_velocity, export_rollout, learned_rollout, summary
from sims.solvers.soft_disks import SoftDisks, Verlet
from sims.solvers.sph import SPH, SPHConfig
from training.config import to_dict
from training.inference import compile_network, inference_device
from training.pretrained import Card, cards, evaluation_target
from training.recipe import load, read_run
from training.report import Column, Report

COLUMNS = [Column("one_step_mse", "one-step MSE", "m^2", spread="one_step_mse_std"),
           Column("mse_at_20", "MSE at 20 steps", "m^2", spread="mse_at_20_std"),
           Column("rollout_mse", "rollout MSE", "m^2", spread="rollout_mse_std"),
           Column("kinetic_energy_error", "rel. KE error"),
           Column("seconds_per_frame", "time per frame", "s"), Column("diverged", "diverged", format=".0f")]
SHIPPED: dict[str, Card] = cards(Path(__file__).with_name("pretrained"))


def check_scenes(name: str, out: Path, seed_offset: int = 0) -> Path:
    """Generate the fresh scenes of a shipped simulator's card check (its ``seed`` plus ``seed_offset``: seeds
    the model never saw) under ``out``; returns the test file that holds them.

    Args:
        name: a shipped model (``SHIPPED``): ``gns-*`` (SPH water drops), ``mgn-flag`` or ``mgn-cylinder``.
        out: the dataset folder to write.
        seed_offset: added to the card's seed (the demo's seed).
    """
    if name not in SHIPPED:
        raise ValueError(f"no check scenes for {name!r}; shipped: {', '.join(SHIPPED)}")
    check = SHIPPED[name].check
    seed = seed_offset + check["seed"]
    if name.startswith("gns-"):
        generate_waterdrop(out, seed=seed, trajectories=1, held_out=check["trajectories"], frames=check["frames"],
                           frame_dt=check["frame_dt"], progress=False)
    elif name == "mgn-flag":
        mesh_data.generate_flag(out, seed=seed, trajectories=4 * check["trajectories"], frames=check["frames"],
                                progress=False)
    elif name == "mgn-cylinder":
        mesh_data.generate_cylinder_flow(out, seed=seed, trajectories=1, held_out=check["trajectories"], frames=2,
                                         test_frames=check["frames"], workers=2, progress=False)
    else:
        raise ValueError(f"no check scenes for {name!r}: its card names no generator here")
    return out / "test.h5"


LABELS = {"gns": "learned (GNS)", "constant_velocity": "constant velocity", "ballistic": "ballistic + walls",
          "solver_equal_cost": "solver at the model's cost",
          "solver": "solver, its own CFL steps (cost reference; errors over 10 frames)"}


def evaluate(run_dir: str = "runs/gns", data: str | None = None, out: str | None = None, trajectories: int = 8,
             max_steps: int | None = None, precision: str = "auto", compile: str = "auto",
             ensemble: int = 1, device: str = "cpu", pretrained: str | None = None) -> Report:
    """Roll a trained GNS or MeshGraphNet out on held-out trajectories and score it against its baselines
    and its solver; rollouts (HDF5), pictures, table.md and metrics.json go to ``out``.

    Args:
        run_dir: a ``train gns`` or ``train mgn`` run folder.
        data: trajectory file (default: test.h5 of the run's data).
        out: output folder (default: RUN_DIR/eval).
        trajectories: how many trajectories to roll out.
        max_steps: limit the rollout length.
        precision: the network's precision: auto (bf16 where fast), fp32 or bf16.
        compile: torch.compile the network: auto (on CUDA only), on or off.
        ensemble: rollouts per trajectory of a model that samples (MeshGraphNet with PDE-Refiner), each with
            its own noise: the first is scored, all give the ensemble mean and spread.
        device: where a GNS runs: cpu (default: its time per frame is set against the CPU solver's), auto, cuda
            or cuda:N. MeshGraphNet rollouts run on the CPU.
        pretrained: score a shipped simulator instead of ``run_dir`` (``physml models list``; needs ``data``).
    """
    if pretrained is not None:
        run_dir, out = evaluation_target(pretrained, SHIPPED, data, out)
    return _dispatch(run_dir, data, out or str(Path(run_dir) / "eval"), trajectories, max_steps, True, precision,
                     compile, ensemble, device)


def rollout(run_dir: str = "runs/gns", data: str | None = None, out: str | None = None, trajectories: int = 1,
            max_steps: int | None = None, precision: str = "auto", compile: str = "auto",
            device: str = "cpu", pretrained: str | None = None) -> Report:
    """Roll a trained GNS or MeshGraphNet out and export the rollouts to HDF5 (no solver runs).

    Args:
        run_dir: a ``train gns`` or ``train mgn`` run folder.
        data: trajectory file (default: test.h5 of the run's data).
        out: output folder (default: RUN_DIR/rollouts).
        trajectories: how many trajectories to roll out.
        max_steps: limit the rollout length.
        precision: the network's precision: auto (bf16 where fast), fp32 or bf16.
        compile: torch.compile the network: auto (on CUDA only), on or off.
        device: where a GNS runs: cpu, auto (CUDA when present), cuda or cuda:N. MeshGraphNet rollouts run on
            the CPU.
        pretrained: roll out a shipped simulator instead of ``run_dir`` (``physml models list``; needs ``data``;
            output default runs/NAME/rollouts).
    """
    if pretrained is not None:
        run_dir, out = evaluation_target(pretrained, SHIPPED, data, out or f"runs/{pretrained}/rollouts")
    return _dispatch(run_dir, data, out or str(Path(run_dir) / "rollouts"), trajectories, max_steps, False,
                     precision, compile, device=device)


def _dispatch(run_dir: str, data: str | None, out: str, trajectories: int, max_steps: int | None,
              with_solver: bool, precision: str, compile: str, ensemble: int = 1, device: str = "cpu") -> Report:
    recipe, run = read_run(run_dir, [train_gns.RECIPE, train_mgn.RECIPE])
    dev = inference_device(device)
    data_file = data or str(Path(run.data_dir) / "test.h5")
    refuse_overwriting_inputs(out, [data_file, run.data_dir])
    if recipe is train_gns.RECIPE:
        if ensemble != 1:
            raise ValueError("--ensemble is for MeshGraphNets with a PDE-Refiner; a GNS is deterministic")
        return evaluate_gns(run_dir, data_file, out, trajectories, max_steps, with_solver, precision, compile,
                            str(dev))
    if dev.type != "cpu":
        raise ValueError(f"--device {device}: MeshGraphNet rollouts run on the CPU (GNS rollouts take a device)")
    return mesh_evaluate.evaluate(run_dir, data_file, out, trajectories, max_steps, with_solver, precision, compile,
                                  ensemble)


SOLVERS = ("sph", "soft_disks")  # the ``solver`` names in dataset metadata that evaluation can restart


def _restart(metadata: dict, start: np.ndarray, velocity: np.ndarray) -> tuple[SPH | Verlet, np.ndarray]:
    """The dataset's solver at positions ``start`` [N, D] (dataset frame) and velocities [N, D] in m/s, and
    the offset of the dataset frame from the solver's."""
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in metadata["solver_params"].items()}
    if metadata["solver"] == "sph":
        cfg = SPHConfig(**params)
        start = np.clip(start - WATER_OFFSET, 0.0, np.asarray(cfg.box))
        return SPH(cfg, start, velocity), np.full(start.shape[1], WATER_OFFSET)
    return Verlet(SoftDisks(**params), start, velocity), np.zeros(start.shape[1])


def solver_rollout(metadata: dict, positions: np.ndarray, particle_type: np.ndarray, history: int,
                   substeps: int | None) -> Rollout:
    """The dataset's solver (one of :data:`SOLVERS`) restarted from frame ``history - 1`` (velocity from the
    last two frames).

    ``substeps=None`` lets the solver take its own steps (its real cost per frame); ``substeps=1`` forces one
    step per frame, the learned model's frame rate.
    """
    dt = float(metadata["dt"])
    velocity = (positions[history - 1] - positions[history - 2]) / dt
    solver, offset = _restart(metadata, positions[history - 1], velocity)
    start = positions[history - 1]
    steps = positions.shape[0] - history
    out = np.full((steps,) + start.shape, np.nan)
    diverged = None
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        for t in range(steps):
            if substeps is None:
                solver.advance(dt)
            else:
                for _ in range(substeps):
                    solver.step(dt / substeps)
            x = solver.x[: len(start)] + offset
            if not np.isfinite(x).all() or np.abs(x).max() > 1e3:
                diverged = t
                break
            out[t] = x
    elapsed = (time.perf_counter() - t0) / max(1, steps if diverged is None else diverged)
    return Rollout(positions[:history], out, positions[history:], particle_type, elapsed, diverged)


def equal_cost_substeps(metadata: dict, positions: np.ndarray, history: int, seconds_per_frame: float,
                        trials: int = 5) -> int:
    """How many solver steps fit in ``seconds_per_frame`` (at least 1): the dataset's solver restarted at
    frame ``history - 1`` of ``positions [T, N, D]`` and timed over ``trials`` small steps (a step's cost
    hardly depends on its size)."""
    dt = float(metadata["dt"])
    solver, _ = _restart(metadata, positions[history - 1], (positions[history - 1] - positions[history - 2]) / dt)
    solver.step(dt / 100)  # warm-up (compilation, neighbour lists)
    t0 = time.perf_counter()
    for _ in range(trials):
        solver.step(dt / 100)
    return max(1, int(seconds_per_frame / ((time.perf_counter() - t0) / trials)))


def evaluate_gns(run_dir: str | Path, data_file: str | Path, out_dir: str | Path, max_trajectories: int = 4,
                 max_steps: int | None = None, with_solver: bool = True, precision: str = "auto",
                 compile: str = "auto", device: str = "cpu") -> Report:
    """Roll out every method on the first ``max_trajectories`` of ``data_file``; write rollouts, the report
    and pictures to ``out_dir``. ``precision``, ``compile`` and ``device`` as in :func:`evaluate`."""
    model, run = load(run_dir, [train_gns.RECIPE], device=device)
    compile_network(model.net, compile, device)
    history = model.cfg.history
    out_dir = Path(out_dir)
    results: dict[str, list[Rollout]] = {key: [] for key in LABELS}
    equal_cost: list[int] = []  # the solver's steps per frame at the model's cost, per trajectory
    with TrajectoryReader(data_file) as reader:
        metadata = reader.metadata
        count = min(max_trajectories, len(reader))
        for k in tqdm(range(count), desc="evaluate"):
            traj = reader[k]
            positions = traj.position[: (history + max_steps) if max_steps else None].astype(np.float64)
            learned = learned_rollout(model, positions, traj.particle_type, history, device, precision)
            results["gns"].append(learned)
            results["constant_velocity"].append(constant_velocity(positions, traj.particle_type, history))
            if "gravity" in metadata.get("solver_params", {}):
                results["ballistic"].append(ballistic(positions, traj.particle_type, np.asarray(metadata["bounds"]),
                                                      float(metadata["solver_params"]["gravity"]),
                                                      float(metadata["dt"]), history))
            if with_solver and metadata.get("solver") in SOLVERS:
                substeps = equal_cost_substeps(metadata, positions, history, learned.seconds_per_frame)
                equal_cost.append(substeps)
                results["solver_equal_cost"].append(
                    solver_rollout(metadata, positions, traj.particle_type, history, substeps))
                results["solver"].append(
                    solver_rollout(metadata, positions[: history + 10], traj.particle_type, history, None))
            export_rollout(out_dir / f"rollout_{k:03d}.h5", learned, metadata, to_dict(run))
            if k == 0:
                bounds = np.asarray(metadata["bounds"])
                draw = plots.particles(bounds)
                plots.frame_strip(out_dir / "rollout_000.png", learned.ground_truth, learned.predicted, draw)
                plots.animation(out_dir / "rollout_000.gif", learned.ground_truth, learned.predicted, draw)
    report = Report(f"GNS rollouts on {Path(data_file).name}", COLUMNS,
                    info={"run_dir": str(run_dir), "data_file": str(data_file), "trajectories": count,
                          "out": str(out_dir)})
    labels = {**LABELS, "solver_equal_cost": f"{LABELS['solver_equal_cost']} "
              f"({min(equal_cost, default=0)}-{max(equal_cost, default=0)} steps per frame)"}
    for key, rolls in results.items():
        if rolls:
            report.add(key, labels[key], summary(rolls))
    curves = {LABELS[k]: v for k, v in mean_curves(results, "position_mse").items()}
    plots.error_curves(out_dir / "error_vs_step.png", curves)
    curves = {LABELS[k]: v for k, v in mean_curves(results, "kinetic_energy_error").items()}
    plots.error_curves(out_dir / "kinetic_energy_error_vs_step.png", curves, ylabel="relative kinetic-energy error")
    report.write(out_dir)
    return report


def mean_curves(results: dict[str, list[Rollout]], error: str) -> dict[str, np.ndarray]:
    """Per-step mean of one error over each method's rollouts (diverged steps ignored; all-diverged: NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {name: np.nanmean([r.errors[error] for r in rolls], axis=0)
                for name, rolls in results.items() if rolls and name != "solver"}

