"""``physml hep train jets``: a tagger trained with the shared Trainer on generated jet files.

The jets of ``jets_*.root`` (balanced and shuffled by the generator) are split by position: the first 80%
train, the next 10% validate, the last 10% test (``evaluate jets`` uses the same split).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from backbones.routing import RouterConfig, routing_loss, routing_metrics
from hep.jets.inputs import JetBatch, JetSet, collate, load_jets
from hep.jets.models import MODELS, ParticleTransformer
from training import TrainerConfig
from training.recipe import Built, Recipe

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
    """Cross-entropy, plus the routed layers' auxiliary losses (load balance, z-loss) where there are any;
    logs accuracy and, for routed taggers, the load per expert and the dropped fraction."""
    logits = model(jets)
    metrics = {"accuracy": float((logits.argmax(1) == jets.label).float().mean())} | routing_metrics(model)
    return F.cross_entropy(logits, jets.label) + routing_loss(model), metrics


@dataclass
class JetRun:
    """A tagger's training run; defaults are the reference configuration of docs/hep.md."""

    data_dir: str = "runs/data/jets"   # folder with jets_*.root (physml data generate jets)
    model: str = field(default="particlenet-lite", metadata={"choices": tuple(MODELS)})  # the tagger
    max_jets: int | None = None        # use only the first jets of the files (None: all)
    moe: RouterConfig = field(default_factory=RouterConfig)  # the routed MLPs of part-moe
    # weaver-core's recipe: Ranger at 5e-3, flat then decayed to 1% over the last 30%, batch 128, and the
    # weights of the lowest validation loss
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/jets", steps=2000, batch_size=128, lr=5e-3, optimizer="ranger", schedule="flat_decay",
        select_by="loss", log_every=20))


def build_model(run: JetRun) -> torch.nn.Module:
    if run.model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {run.model!r}")
    return ParticleTransformer(moe=run.moe) if run.model == "part-moe" else MODELS[run.model]()


def build(run: JetRun) -> Built:
    """The first 80% of the jets train; the first ``MONITOR_JETS`` of the next 10% validate."""
    model = build_model(run)
    parts = split(load_jets(jet_files(run.data_dir), limit=run.max_jets))
    return Built(model, JetSet(parts["train"]), JetSet(parts["valid"][:MONITOR_JETS]), collate, loss_fn)


RECIPE = Recipe("jets", "jet tagger (ParticleNet, ParT, Perceiver, PFN) on jet files", JetRun, build, build_model)
