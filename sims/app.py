"""What the sims domain offers the front door: its datasets, its `physml sims` commands and its demo step."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from sims import data, learned_forces

DATASETS = [data.SOFT_DISKS, data.WATERDROP, data.DAMBREAK]


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
    """Generate soft-disk trajectories with the solver, learn their forces, score on held-out trajectories."""
    data_dir = out / "data" / "soft_disks"
    data.generate_soft_disks(data_dir, seed=seed, trajectories=8, frames=50, particles=120)
    cfg = learned_forces.LearnedForcesConfig(data_dir=str(data_dir))
    cfg.trainer.run_dir, cfg.trainer.steps, cfg.trainer.seed = str(out / "learned_forces"), 1500, seed
    _, metrics = learned_forces.train(cfg)
    return [{"domain": "sims", "part": "learned forces (EPD) on soft-disk solver",
             "metric": "explained variance of acceleration, held-out", "value": f"{metrics['explained_variance']:.3f}",
             "reference": "0 (mean acceleration)", "output": str(out / "learned_forces")}]
