"""The run protocol: each trainable model declares one :class:`Recipe`; training, loading and the command
line are the same for all of them.

A recipe names a *run* dataclass (everything the run needs, with a ``trainer: TrainerConfig`` field) and two
functions:

    build(run) -> Built(model, train_set, eval_set, collate, loss[, eval_metrics])
    model(run) -> nn.Module      # the network alone, for load()

``build`` may fill fields of the run that follow from the data (particle metadata, a calorimeter's
geometry, the model kind of a mesh dataset): the run saved in ``config.json`` is then enough to rebuild the
network without the data. ``train(recipe, run)`` seeds, builds, fits on the shared :class:`Trainer` (or the
:class:`AdversarialTrainer` when the loss is a :class:`GanLosses`) and writes
``config.json = {"recipe": NAME, "run": {...}, "world_size": N}``; ``load(run_dir, recipes)`` reads it back
into the run dataclass and the checkpoint (the selected one, else the newest) into the network.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from training.adversarial import AdversarialConfig, AdversarialTrainer, GanLosses
from training.checkpoint import inference_weights, load_checkpoint, model_checkpoint
from training.config import from_dict, to_dict
from training.seeding import seed_everything
from training.trainer import EvalMetrics, LossFn, Trainer


@dataclass
class Built:
    """What a recipe's ``build`` returns: the network, its data and its loss."""

    model: nn.Module
    train_set: Dataset
    eval_set: Dataset | None
    collate: Callable | None
    loss: LossFn | GanLosses
    eval_metrics: EvalMetrics | None = None  # metrics of the whole model at each evaluation (a validation rollout)


@dataclass(frozen=True)
class Recipe:
    """A trainable model, declared once.

    Args:
        name: the model's command name (``physml DOMAIN train NAME``) and its tag in ``config.json``.
        summary: one line for ``--help``.
        run_type: the run dataclass; its field comments become the command's help.
        build: ``build(run) -> Built``.
        model: ``model(run) -> nn.Module`` for a run as saved in ``config.json``.
        after_fit: optional ``after_fit(model, built, run)`` run once on rank 0 after training (pictures).
    """

    name: str
    summary: str
    run_type: type
    build: Callable[[Any], Built]
    model: Callable[[Any], nn.Module]
    after_fit: Callable[[nn.Module, Built, Any], None] | None = None


@dataclass(frozen=True)
class Command:
    """``physml DOMAIN VERB``: one function, or one per task (``physml hep evaluate calo``; the alias
    ``evaluate-calo`` is generated).

    Args:
        verb: the command's name.
        summary: one line for ``--help``.
        run: the function, or ``{task: function}``. Its parameters become the options; it returns a
            :class:`training.report.Report` (printed) or the path it wrote.
    """

    verb: str
    summary: str
    run: Callable | dict[str, Callable]

    @property
    def tasks(self) -> dict[str, Callable]:
        return self.run if isinstance(self.run, dict) else {}


def train(recipe: Recipe, run: Any) -> dict[str, float]:
    """Train ``run`` (an instance of ``recipe.run_type``) to its ``trainer.steps``; returns the last evaluation
    (or training) metrics. Under torchrun every process calls this."""
    if not isinstance(run, recipe.run_type):
        raise TypeError(f"recipe {recipe.name!r} trains a {recipe.run_type.__name__}, got {type(run).__name__}")
    run.trainer = run.trainer.resolved()
    seed_everything(run.trainer.seed)
    built = recipe.build(run)
    saved = {"recipe": recipe.name, "run": to_dict(run)}
    if isinstance(built.loss, GanLosses):
        if not isinstance(run.trainer, AdversarialConfig):
            raise TypeError(f"recipe {recipe.name!r}: adversarial losses need an AdversarialConfig trainer")
        trainer: Trainer = AdversarialTrainer(built.model, built.loss, built.train_set, run.trainer, built.collate,
                                              built.eval_set, saved, built.eval_metrics)
    else:
        trainer = Trainer(built.model, built.loss, built.train_set, run.trainer, built.collate, built.eval_set,
                          saved, built.eval_metrics)
    metrics = trainer.fit()
    if recipe.after_fit is not None and trainer.ctx.is_main:
        recipe.after_fit(built.model, built, run)
    return metrics


def read_run(run_dir: str | os.PathLike, recipes: Iterable[Recipe]) -> tuple[Recipe, Any]:
    """The recipe and the run dataclass saved in ``run_dir/config.json`` by :func:`train`.

    Args:
        run_dir: a run folder.
        recipes: the recipes the caller accepts (a jet evaluator accepts taggers only).
    """
    by_name = {r.name: r for r in recipes}
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; is {run_dir} a run folder of "
                                f"{' or '.join(by_name)}?")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    name = config.get("recipe") if isinstance(config, dict) else None
    if name is None:
        raise ValueError(f"{path}: no 'recipe' entry; the run was written by an older physml (retrain it)")
    if name not in by_name:
        raise ValueError(f"{path}: a {name!r} run; expected a run of {' or '.join(by_name)}")
    recipe = by_name[name]
    try:
        run = from_dict(recipe.run_type, config.get("run", {}))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return recipe, run


def load(run_dir: str | os.PathLike, recipes: Iterable[Recipe], device: str = "cpu") -> tuple[nn.Module, Any]:
    """The trained network of ``run_dir`` (its selected checkpoint, else the newest; eval mode, on ``device``)
    and its run.

    Args:
        run_dir: a folder written by :func:`train`.
        recipes: the recipes the caller accepts.
        device: where the network goes.
    """
    recipe, run = read_run(run_dir, recipes)
    path = model_checkpoint(run_dir)
    if path is None:
        raise FileNotFoundError(f"{run_dir}/checkpoints: no checkpoint in this {recipe.name} run folder")
    model = recipe.model(run)
    try:
        model.load_state_dict(inference_weights(load_checkpoint(path)))
    except RuntimeError as err:
        raise ValueError(f"{path}: does not fit the {recipe.name} network of its config.json ({err})") from None
    return model.to(device).eval(), run

