"""Training a GNS (Sanchez-Gonzalez et al. 2020) on a particle-trajectory dataset with the shared Trainer
(torchrun-ready): windows of C + 1 frames from ``train.h5``, one-step validation on ``valid.h5``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from datasets.trajectories import require_metadata
from sims.gns import GNS, GNSConfig, training_loss
from sims.windows import PositionWindows, collate
from training import TrainerConfig
from training.recipe import Built, Recipe


@dataclass
class GNSRun:
    """Everything a GNS training run needs; defaults are the reference configuration of docs/sims.md."""

    data_dir: str = "runs/data/waterdrop"  # folder with train.h5 and valid.h5 (physml data generate waterdrop)
    gns: GNSConfig = field(default_factory=lambda: GNSConfig(latent=64, n_steps=5))
    metadata: dict = field(default_factory=dict)  # the training file's metadata (filled when training starts)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/gns", steps=20_000, batch_size=2, lr=1e-3, schedule="exponential", lr_final=1e-5,
        log_every=50))


def build_model(run: GNSRun) -> GNS:
    return GNS(run.gns, run.metadata)


def build(run: GNSRun) -> Built:
    data = Path(run.data_dir)
    train_set = PositionWindows(data / "train.h5", run.gns.history)
    valid_set = PositionWindows(data / "valid.h5", run.gns.history)
    require_metadata(data / "train.h5", train_set.metadata)  # the normalisation statistics too
    run.metadata = train_set.metadata
    return Built(build_model(run), train_set, valid_set, collate, training_loss)


RECIPE = Recipe("gns", "Graph Network-based Simulator on a particle dataset", GNSRun, build, build_model)
