"""``physml hep train-jets``: a tagger trained with the shared Trainer on generated jet files.

The jets of ``jets_*.root`` (balanced and shuffled by the generator) are split by position: the first 80%
train, the next 10% validate, the last 10% test (``evaluate-jets`` uses the same split).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from hep.jets.inputs import JetBatch, JetSet, collate, load_jets
from hep.jets.models import MODELS
from training import Trainer, TrainerConfig, seed_everything
from training.checkpoint import load_run

SPLIT = (0.8, 0.1)
MONITOR_JETS = 5000  # validation jets scored during training (the test split is evaluate-jets' business)


def jet_files(data_dir: str | Path) -> list[Path]:
    files = sorted(Path(data_dir).glob("jets_*.root"))
    if not files:
        raise FileNotFoundError(f"{data_dir}: no jets_*.root files (physml data generate jets --out {data_dir})")
    return files


def split(jets: JetBatch) -> dict[str, JetBatch]:
    """Train / valid / test by position."""
    n = len(jets)
    a, b = int(SPLIT[0] * n), int((SPLIT[0] + SPLIT[1]) * n)
    return {"train": jets[:a], "valid": jets[a:b], "test": jets[b:]}


def loss_fn(model: torch.nn.Module, jets: JetBatch) -> tuple[torch.Tensor, dict]:
    logits = model(jets)
    return F.cross_entropy(logits, jets.label), {"accuracy": float((logits.argmax(1) == jets.label).float().mean())}


@dataclass
class JetRun:
    data_dir: str = "runs/data/jets"
    model: str = "particlenet-lite"
    max_jets: int | None = None
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/jets", steps=2000, batch_size=64, lr=1e-3, schedule="cosine", lr_final=1e-5,
        warmup_steps=100, log_every=20, checkpoint_every=500, eval_every=500))


def train(run: JetRun) -> dict[str, float]:
    if run.model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {run.model!r}")
    seed_everything(run.trainer.seed)
    parts = split(load_jets(jet_files(run.data_dir), limit=run.max_jets))
    train_set, valid_set = JetSet(parts["train"]), JetSet(parts["valid"][:MONITOR_JETS])
    model = MODELS[run.model]()
    config = {"model": run.model, "data_dir": str(run.data_dir), "max_jets": run.max_jets}
    return Trainer(model, loss_fn, train_set, run.trainer, collate_fn=collate, eval_data=valid_set,
                   run_config=config).fit()


def load_tagger(run_dir: str | Path) -> tuple[torch.nn.Module, dict]:
    config, state = load_run(run_dir, "train-jets")
    model = MODELS[config["model"]]()
    model.load_state_dict(state["model"])
    return model.eval(), config
