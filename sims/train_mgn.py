"""Training a MeshGraphNet on a mesh-trajectory dataset (``cylinder_flow`` or ``flag``) with the shared
Trainer (torchrun-ready). The model kind follows the data: a velocity field gives the flow model, a moving
mesh the cloth model."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from sims.mesh_samples import MeshFrames, collate
from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig, training_loss
from training import TrainerConfig
from training.recipe import Built, Recipe


@dataclass
class MGNRun:
    """Everything a MeshGraphNet run needs; the model kind (and its paper noise) comes from the data."""

    data_dir: str = "runs/data/cylinder_flow"  # folder with train.h5 and valid.h5 (cylinder_flow or flag)
    mgn: MeshGraphNetConfig = field(default_factory=MeshGraphNetConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/mgn", steps=20_000, batch_size=2, lr=1e-3, schedule="exponential", lr_final=1e-5,
        log_every=50))


def build_model(run: MGNRun) -> MeshGraphNet:
    return MeshGraphNet(run.mgn)


def build(run: MGNRun) -> Built:
    data = Path(run.data_dir)
    train_set, valid_set = MeshFrames(data / "train.h5"), MeshFrames(data / "valid.h5")
    if run.mgn.kind is None:
        run.mgn = dataclasses.replace(run.mgn, kind=train_set.kind)
    if run.mgn.kind != train_set.kind:
        raise ValueError(f"{data}: the data is {train_set.kind!r}, the model config says {run.mgn.kind!r}")
    return Built(build_model(run), train_set, valid_set, collate, training_loss)


RECIPE = Recipe("mgn", "MeshGraphNet on a mesh dataset (cylinder_flow or flag)", MGNRun, build, build_model)
