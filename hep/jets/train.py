"""``physml hep train jets``: a tagger trained with the shared Trainer on generated jet files.

The jets of ``jets_*.root`` (balanced and shuffled by the generator) are split by position: the first 80%
train, the next 10% validate, the last 10% test (``evaluate jets`` uses the same split).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from backbones.routing import RouterConfig, routing_loss, routing_metrics
from hep.jets.inputs import VERTEX_CONFIG, JetBatch, JetSet, collate, load_jets
from hep.jets.models import MEDIA_MODELS, MODELS, ParticleNet, ParticleTransformer, VertexTagger
from training import TrainerConfig
from training.recipe import Built, Recipe, load
from training.scaling import ScalingTask, steps_for

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
    train_jets: int | None = None      # train on only the first jets of the training split (None: all of it)
    width: int | None = None           # ParT width, or ParticleNet's last-block channels (None: the model's own)
    base: str | None = None            # part-flamingo: the trained `part` run it freezes and extends
    every: int = 1                     # part-flamingo(-scratch): a gated cross-attention layer every k blocks
    moe: RouterConfig = field(default_factory=RouterConfig)  # the routed MLPs of part-moe
    # weaver-core's recipe: Ranger at 5e-3, flat then decayed to 1% over the last 30%, batch 128, and the
    # weights of the lowest validation loss
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/jets", steps=2000, batch_size=128, lr=5e-3, optimizer="ranger", schedule="flat_decay",
        select_by="loss", log_every=20))


def build_model(run: JetRun) -> torch.nn.Module:
    if run.model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {run.model!r}")
    if run.model in ("part", "part-moe"):
        return ParticleTransformer(moe=run.moe if run.model == "part-moe" else None, width=run.width)
    if run.model in MEDIA_MODELS:
        return VertexTagger(ParticleTransformer(width=run.width), freeze=run.model == "part-flamingo", every=run.every)
    if run.model in ("particlenet", "particlenet-lite"):
        return ParticleNet(lite=run.model == "particlenet-lite", width=run.width)
    if run.width is not None:
        raise ValueError(f"--width sets the width of ParT and ParticleNet, not {run.model}'s")
    return MODELS[run.model]()


def frozen_base(run: JetRun) -> ParticleTransformer:
    """``run.base``, the trained kinematics-only ParT that ``part-flamingo`` extends (its width must be the run's)."""
    if run.base is None:
        raise ValueError("part-flamingo extends a trained tagger: give --base RUN_DIR (a `train jets --model part` "
                         "run)")
    base, base_run = load(run.base, [RECIPE])
    if base_run.model != "part" or base_run.width != run.width:
        raise ValueError(f"--base {run.base}: part-flamingo needs a `part` run of width {run.width}, got "
                         f"{base_run.model} of width {base_run.width}")
    return base


def build(run: JetRun) -> Built:
    """The first 80% of the jets train; the first ``MONITOR_JETS`` of the next 10% validate."""
    if run.base is not None and run.model != "part-flamingo":
        raise ValueError(f"--base is part-flamingo's (the tagger it extends), not {run.model}'s")
    model = VertexTagger(frozen_base(run), every=run.every) if run.model == "part-flamingo" else build_model(run)
    config = VERTEX_CONFIG if run.model in MEDIA_MODELS else None
    parts = split(load_jets(jet_files(run.data_dir), config, limit=run.max_jets))
    if run.train_jets is not None and run.train_jets > len(parts["train"]):
        raise ValueError(f"--train-jets {run.train_jets}: the training split holds {len(parts['train'])} jets")
    train_set = parts["train"] if run.train_jets is None else parts["train"][:run.train_jets]
    return Built(model, JetSet(train_set), JetSet(parts["valid"][:MONITOR_JETS]), collate, loss_fn)


RECIPE = Recipe("jets", "jet tagger (ParticleNet, ParT, Perceiver, PFN) on jet files", JetRun, build, build_model)


def scaling_run(size: int, samples: int, experts: int, data_dir: str, run_dir: str) -> JetRun:
    """A scaling sweep's run: ParT of width ``size`` (routed, Switch on every other block, when ``experts >
    1``), one pass over the first ``samples`` training jets, batch 128, with Chinchilla's schedule: AdamW at
    2e-3, linear warm-up over the first 5% of the steps, cosine decay to a tenth. (The reference recipe's
    Ranger ramps its rate up over thousands of steps through RAdam's rectification, so runs of 50-400 steps
    would measure its warm-up, not the data: at width 32 it reached a validation loss of 0.297 / 0.203 on
    6,000 / 24,000 jets against 0.242 / 0.189 with this schedule.)"""
    run = JetRun(data_dir=data_dir, model="part" if experts == 1 else "part-moe", train_jets=samples, width=size,
                 moe=RouterConfig(experts=experts))
    steps = steps_for(samples, run.trainer.batch_size)
    run.trainer = dataclasses.replace(run.trainer, run_dir=run_dir, steps=steps, optimizer="adamw", lr=2e-3,
                                      schedule="cosine", warmup_steps=max(1, steps // 20), lr_final=2e-4,
                                      progress=False)
    return run


SCALING = ScalingTask(RECIPE, scaling_run)


