"""Training a MeshGraphNet on a mesh-trajectory dataset (``cylinder_flow`` or ``flag``) with the shared
Trainer (torchrun-ready). The model kind follows the data: a velocity field gives the flow model, a moving
mesh the cloth model."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from sims.mesh_samples import MeshFrames, collate
from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig, training_loss
from training import Trainer, TrainerConfig, seed_everything
from training.checkpoint import load_run


@dataclass
class MGNRun:
    """Everything a MeshGraphNet run needs; ``mgn=None`` takes the paper's configuration for the data's kind."""

    data_dir: str = "runs/data/cylinder_flow"
    mgn: MeshGraphNetConfig | None = None
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/mgn", steps=20_000, batch_size=2, lr=1e-3, schedule="exponential", lr_final=1e-5,
        decay_steps=20_000, log_every=50, checkpoint_every=1000, eval_every=2000))


def train(run: MGNRun) -> dict[str, float]:
    """Fit on ``train.h5`` with periodic one-step evaluation on ``valid.h5``; returns the last metrics."""
    data = Path(run.data_dir)
    train_set, valid_set = MeshFrames(data / "train.h5"), MeshFrames(data / "valid.h5")
    if run.mgn is None:
        run.mgn = MeshGraphNetConfig(kind=train_set.kind)
    if run.mgn.kind != train_set.kind:
        raise ValueError(f"{data}: the data is {train_set.kind!r}, the model config says {run.mgn.kind!r}")
    seed_everything(run.trainer.seed)
    model = MeshGraphNet(run.mgn)
    trainer = Trainer(model, training_loss, train_set, run.trainer, collate_fn=collate, eval_data=valid_set,
                      run_config={"mgn": dataclasses.asdict(run.mgn), "metadata": train_set.metadata,
                                  "data_dir": str(data)})
    return trainer.fit()


def load_mgn(run_dir: str | Path, device: str = "cpu") -> tuple[MeshGraphNet, dict]:
    """The model of a ``train-mgn`` run folder, from its config.json and newest checkpoint."""
    config, state = load_run(run_dir, "train-mgn")
    model = MeshGraphNet(MeshGraphNetConfig(**config["mgn"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
