"""Training a GNS on a particle-trajectory dataset with the shared Trainer (torchrun-ready)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from sims.gns import GNS, GNSConfig, training_loss
from sims.windows import PositionWindows, collate
from training import Trainer, TrainerConfig, seed_everything


@dataclass
class GNSRun:
    """Everything a GNS training run needs; defaults are the reference configuration of docs/sims.md."""

    data_dir: str = "runs/data/waterdrop"
    gns: GNSConfig = field(default_factory=lambda: GNSConfig(latent=64, n_steps=5))
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/gns", steps=20_000, batch_size=2, lr=1e-3, schedule="exponential", lr_final=1e-5,
        decay_steps=20_000, log_every=50, checkpoint_every=1000, eval_every=2000))


def train(run: GNSRun) -> dict[str, float]:
    """Fit on ``train.h5`` with periodic one-step evaluation on ``valid.h5``; returns the last metrics."""
    data = Path(run.data_dir)
    train_set = PositionWindows(data / "train.h5", run.gns.history)
    valid_set = PositionWindows(data / "valid.h5", run.gns.history)
    seed_everything(run.trainer.seed)
    model = GNS(run.gns, train_set.metadata)
    trainer = Trainer(model, training_loss, train_set, run.trainer, collate_fn=collate, eval_data=valid_set,
                      run_config={"gns": dataclasses.asdict(run.gns), "metadata": train_set.metadata,
                                  "data_dir": str(data)})
    return trainer.fit()
