"""What the sims domain offers the front door: its datasets, its `physml sims` commands and its demo step."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from sims import data, evaluate, learned_forces, mesh_data, mesh_evaluate, train_gns, train_mgn

DATASETS = [data.SOFT_DISKS, data.WATERDROP, data.DAMBREAK, mesh_data.CYLINDER_FLOW, mesh_data.FLAG]


def add_commands(group: argparse._SubParsersAction) -> None:
    """``physml sims train-forces``."""
    p = group.add_parser("train-forces", help="train a learned force field (encode-process-decode) on a "
                                              "particle dataset and evaluate it on its test split",
                         description=learned_forces.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="runs/data/soft_disks", help="folder with train.h5 and test.h5")
    p.add_argument("--run-dir", default="runs/learned_forces", help="where checkpoints, metrics and plots go")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=4, help="global batch (frames), split over torchrun ranks")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--message-passing-steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --run-dir")
    p.set_defaults(run=_train_forces)
    _add_gns_commands(group)


def _add_gns_commands(group: argparse._SubParsersAction) -> None:
    """``physml sims train-gns | rollout | evaluate``."""
    p = _simulator_parser(group, "train-gns", "train a Graph Network-based Simulator on a particle dataset",
                          train_gns.__doc__, "runs/data/waterdrop", "runs/gns", "windows", latent=64, steps=5)
    p.add_argument("--noise-std", type=float, default=6.7e-4, help="input noise on the last velocity [m/frame]")
    p.set_defaults(run=_train_gns)
    _add_mgn_command(group)
    for name, helptext in (("rollout", "roll a trained GNS or MeshGraphNet out and export it to HDF5"),
                           ("evaluate", "score a trained GNS or MeshGraphNet against its baseline and solver")):
        p = group.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--run-dir", default="runs/gns", help="a train-gns or train-mgn run folder")
        p.add_argument("--data", default=None, help="trajectory file (default: test.h5 of the run's data)")
        p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/rollouts or RUN_DIR/eval)")
        p.add_argument("--trajectories", type=int, default=1 if name == "rollout" else 4)
        p.add_argument("--max-steps", type=int, default=None, help="limit the rollout length")
        p.set_defaults(run=_evaluate)


def _simulator_parser(group: argparse._SubParsersAction, name: str, helptext: str, doc: str | None, data: str,
                      run_dir: str, unit: str, latent: int, steps: int) -> argparse.ArgumentParser:
    """The options every learned-simulator training command shares."""
    p = group.add_parser(name, help=helptext, description=doc)
    p.add_argument("--data", default=data, help="folder with train.h5 and valid.h5")
    p.add_argument("--run-dir", default=run_dir)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--batch-size", type=int, default=2, help=f"global batch ({unit}), split over torchrun ranks")
    p.add_argument("--lr", type=float, default=1e-3, help="initial LR, decayed exponentially to 1e-5")
    p.add_argument("--latent", type=int, default=latent)
    p.add_argument("--message-passing-steps", type=int, default=steps)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --run-dir")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return p


def _fit_simulator(train, run, args: argparse.Namespace) -> None:
    """Apply the shared options to ``run.trainer``, train, report once under torchrun."""
    t = run.trainer
    t.run_dir, t.steps, t.batch_size, t.lr, t.seed, t.resume, t.progress = (
        args.run_dir, args.steps, args.batch_size, args.lr, args.seed, args.resume, args.progress)
    t.decay_steps = args.steps
    t.checkpoint_every = min(t.checkpoint_every, max(1, args.steps // 10))
    t.eval_every = min(t.eval_every, max(1, args.steps // 5))
    metrics = train(run)
    if os.environ.get("RANK", "0") == "0":
        print(f"validation one-step loss {metrics.get('loss', float('nan')):.4g}; run folder {t.run_dir}")


def _add_mgn_command(group: argparse._SubParsersAction) -> None:
    p = _simulator_parser(group, "train-mgn", "train a MeshGraphNet on a mesh dataset (cylinder_flow or flag)",
                          train_mgn.__doc__, "runs/data/cylinder_flow", "runs/mgn", "meshes", latent=128, steps=15)
    p.add_argument("--world-radius", type=float, default=0.05, help="cloth: world-edge radius [m] (0: none)")
    p.set_defaults(run=_train_mgn)


def _train_mgn(args: argparse.Namespace) -> None:
    from sims.mesh_samples import MeshFrames
    from sims.meshgraphnet import MeshGraphNetConfig

    kind = MeshFrames(Path(args.data) / "valid.h5").kind
    run = train_mgn.MGNRun(data_dir=args.data, mgn=MeshGraphNetConfig(
        kind=kind, latent=args.latent, n_steps=args.message_passing_steps, world_radius=args.world_radius))
    _fit_simulator(train_mgn.train, run, args)


def _train_gns(args: argparse.Namespace) -> None:
    run = train_gns.GNSRun(data_dir=args.data)
    run.gns.latent, run.gns.n_steps, run.gns.noise_std = args.latent, args.message_passing_steps, args.noise_std
    _fit_simulator(train_gns.train, run, args)


def _run_config(run_dir: str) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; is {run_dir} a train-gns or train-mgn run folder?")
    return json.loads(path.read_text())


def _evaluate(args: argparse.Namespace) -> None:
    """``rollout`` exports the learned rollouts; ``evaluate`` adds the solver baselines."""
    with_solver = args.sims_command == "evaluate"
    out = Path(args.out or Path(args.run_dir) / ("eval" if with_solver else "rollouts"))
    config = _run_config(args.run_dir)
    module = mesh_evaluate if "mgn" in config else evaluate
    data_file = args.data or str(Path(config["data_dir"]) / "test.h5")
    table = module.evaluate(args.run_dir, data_file, out, args.trajectories, args.max_steps, with_solver)
    print(module.format_table(table))
    print(f"rollouts (HDF5), pictures and metrics in {out}")


def _train_forces(args: argparse.Namespace) -> None:
    cfg = learned_forces.LearnedForcesConfig(data_dir=args.data, latent=args.latent,
                                             n_steps=args.message_passing_steps)
    t = cfg.trainer
    t.run_dir, t.steps, t.batch_size, t.lr, t.seed, t.resume = (args.run_dir, args.steps, args.batch_size,
                                                                args.lr, args.seed, args.resume)
    t.checkpoint_every = max(1, args.steps // 10)
    _, metrics = learned_forces.train(cfg)
    if os.environ.get("RANK", "0") == "0":  # torchrun: report once
        print(f"test: explained variance of the acceleration {metrics['explained_variance']:.3f} "
              f"(predicting the mean: 0); run folder {t.run_dir}")


def demo(out: Path, seed: int = 0) -> list[dict]:
    """The sims parts end to end: learned forces on the soft-disk solver, a short GNS on SPH water, and a
    short MeshGraphNet on the flag solver."""
    return _demo_forces(out, seed) + _demo_gns(out, seed) + _demo_mgn(out, seed)


def _demo_mgn(out: Path, seed: int) -> list[dict]:
    """A small flag in gusts, a small MeshGraphNet (with world edges) trained for a minute, 40-step rollouts."""
    from sims.meshgraphnet import MeshGraphNetConfig

    data_dir, run_dir = out / "data" / "flag", out / "mgn_flag"
    mesh_data.generate_flag(data_dir, seed=seed, trajectories=4, frames=60, nx=11, ny=7, progress=False)
    run = train_mgn.MGNRun(data_dir=str(data_dir), mgn=MeshGraphNetConfig(kind="cloth", latent=32, n_steps=4,
                                                                          world_radius=0.05))
    t = run.trainer
    t.run_dir, t.steps, t.seed, t.decay_steps, t.eval_every, t.checkpoint_every = (
        str(run_dir), 400, seed, 400, 400, 400)
    train_mgn.train(run)
    table = mesh_evaluate.evaluate(run_dir, data_dir / "test.h5", run_dir / "eval", max_trajectories=1,
                                   max_steps=40)
    learned, frozen = table["MeshGraphNet"], table["frozen (no change)"]
    solver = table["solver (reference cost)"]["seconds_per_frame"]
    return [{"domain": "sims", "part": "MeshGraphNet on the flag solver (400 steps)",
             "metric": "world-position RMSE over 10 steps [m]", "value": f"{learned['rmse_10']:.3g}",
             "reference": f"constant velocity {frozen['rmse_10']:.3g}", "output": str(run_dir / "eval")},
            {"domain": "sims", "part": "MeshGraphNet vs flag solver", "metric": "seconds per frame",
             "value": f"{learned['seconds_per_frame']:.4f}", "reference": f"solver {solver:.4f}"}]


def _demo_gns(out: Path, seed: int) -> list[dict]:
    """SPH water drops, a GNS trained for a few minutes, rollouts against constant velocity and the solver."""
    data_dir = out / "data" / "waterdrop"
    data.generate_waterdrop(data_dir, seed=seed, trajectories=8, frames=100, spacing=0.03)
    run = train_gns.GNSRun(data_dir=str(data_dir))
    t = run.trainer
    t.run_dir, t.steps, t.seed, t.decay_steps, t.eval_every, t.checkpoint_every = (
        str(out / "gns"), 1500, seed, 1500, 500, 500)
    train_gns.train(run)
    table = evaluate.evaluate(t.run_dir, data_dir / "test.h5", out / "gns" / "eval", max_trajectories=1,
                              max_steps=60)
    learned, cv = table["learned (GNS)"], table["constant velocity"]
    solver = table.get("solver (reference cost)", {}).get("seconds_per_frame", float("nan"))
    return [{"domain": "sims", "part": "GNS on SPH water drops (1,500 steps)", "metric": "rollout MSE, 60 steps [m^2]",
             "value": f"{learned['rollout_mse']:.3g}", "reference": f"constant velocity {cv['rollout_mse']:.3g}"},
            {"domain": "sims", "part": "GNS vs SPH solver", "metric": "seconds per frame",
             "value": f"{learned['seconds_per_frame']:.4f}", "reference": f"solver {solver:.4f}"}]


def _demo_forces(out: Path, seed: int) -> list[dict]:
    """Generate soft-disk trajectories with the solver, learn their forces, score on held-out trajectories."""
    data_dir = out / "data" / "soft_disks"
    data.generate_soft_disks(data_dir, seed=seed, trajectories=8, frames=50, particles=120)
    cfg = learned_forces.LearnedForcesConfig(data_dir=str(data_dir))
    cfg.trainer.run_dir, cfg.trainer.steps, cfg.trainer.seed = str(out / "learned_forces"), 1500, seed
    _, metrics = learned_forces.train(cfg)
    return [{"domain": "sims", "part": "learned forces (EPD) on soft-disk solver",
             "metric": "explained variance of acceleration, held-out", "value": f"{metrics['explained_variance']:.3f}",
             "reference": "0 (mean acceleration)", "output": str(out / "learned_forces")}]
