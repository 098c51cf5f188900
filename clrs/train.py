"""``physml clrs train``: a learned executor of one algorithm (``--algorithm bfs``) or of several sharing one
processor (``--algorithm all``, the multi-task generalist), on Ibarz et al.'s recipe: instances of 4, 7, 11, 13
and 16 nodes with edge probabilities 0.1-0.9 and randomised positions, hints encoded and decoded with no teacher
forcing, Adam at 1e-3, gradient norm clipped at 1, batches of 32, the model selected on 16-node validation
executions."""
from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import torch
from torch import nn

from clrs.model import ClrsNet
from datasets.clrs import SPECS, Batch, ClrsData, Feature, Type, collate
from datasets.clrs.samplers import TRAIN_P, TRAIN_SIZES
from training import TrainerConfig
from training.mixture import Mixture, TaskBatches, collate_by_task
from training.recipe import Built, Recipe

VALID_EXAMPLES = 64  # per algorithm, at the largest training size


@dataclass
class ClrsRun:
    """One algorithm (a single-task model) or several (the generalist); defaults are docs/clrs.md's recipe."""

    algorithm: tuple[str, ...] = ("bfs",)   # what it learns: names of datasets.clrs.SPECS, or all
    sizes: tuple[int, ...] = TRAIN_SIZES    # training instance sizes
    examples: int = 20000                   # training executions per algorithm (generated once, seeded)
    dim: int = 128                          # latent width
    triplet_dim: int = 8                    # triplet message width
    teacher_forcing: float = 0.0            # probability of feeding true hints at a training step
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/clrs/bfs", steps=10000, batch_size=32, lr=1e-3, grad_clip=1.0, select_by="val_error",
        log_every=50, precision="fp32"))


def algorithms(run: ClrsRun) -> tuple[str, ...]:
    """The run's algorithms (``all``: every one in ``SPECS``)."""
    names = tuple(SPECS) if run.algorithm == ("all",) else run.algorithm
    unknown = [a for a in names if a not in SPECS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"--algorithm takes distinct names among {', '.join(SPECS)} (or all); got "
                         f"{', '.join(run.algorithm) or 'none'}")
    return names


def collate_mixed(items: list) -> TaskBatches:
    """Executions ``(algorithm, execution)`` grouped by algorithm, each group padded on its own."""
    return collate_by_task(items, itemgetter(0), collate)


def feature_loss(feature: Feature, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
                 ) -> torch.Tensor:
    """Per-execution loss ``[B]`` of one feature: cross-entropy over the pointed-to node, the marked node or the
    class; binary cross-entropy of masks; squared error of scalars; averaged over real nodes."""
    if feature.type is Type.MASK_ONE:
        return nn.functional.cross_entropy(prediction, target, reduction="none")
    if feature.type in (Type.POINTER, Type.CATEGORICAL):
        per_node = nn.functional.cross_entropy(prediction.transpose(1, 2), target, reduction="none")
    elif feature.type is Type.MASK:
        per_node = nn.functional.binary_cross_entropy_with_logits(prediction, target, reduction="none")
    else:
        per_node = (prediction - target) ** 2
    if per_node.dim() == 1:  # a graph scalar
        return per_node
    return (per_node * mask).sum(1) / mask.sum(1)


def batch_loss(model: ClrsNet, batch: Batch) -> tuple[torch.Tensor, dict]:
    """Output losses at each execution's end plus hint losses at its real steps, per execution, averaged."""
    spec = SPECS[batch.algorithm]
    outputs, hints = model(batch)
    mask = batch.node_mask.float()
    loss_out = sum(feature_loss(spec[k], outputs[k], v, mask) for k, v in batch.outputs.items())
    loss_hint = torch.zeros_like(loss_out)
    if hints:
        b, steps = len(batch), next(iter(hints.values())).shape[1]
        real = (torch.arange(steps, device=mask.device)[None] < batch.lengths[:, None] - 1).float()  # [B, T-1]
        flat_mask = mask[:, None].expand(b, steps, -1).reshape(b * steps, -1)
        for name, pred in hints.items():
            target = batch.hints[name][:, 1:steps + 1]
            per_step = feature_loss(spec[name], pred.flatten(0, 1), target.flatten(0, 1), flat_mask).view(b, steps)
            loss_hint = loss_hint + (per_step * real).sum(1) / real.sum(1).clamp(min=1)
    return (loss_out + loss_hint).mean(), {"output_loss": float(loss_out.detach().mean()),
                                        "hint_loss": float(loss_hint.detach().mean())}


def loss_fn(model: ClrsNet, batches: TaskBatches) -> tuple[torch.Tensor, dict]:
    """Each algorithm's loss weighted by its executions in the batch."""
    total, metrics = 0.0, {}
    for group in batches.groups:
        loss, parts = batch_loss(model, group)
        total = total + len(group) * loss
        if len(batches.groups) == 1:
            metrics = parts
    return total / len(batches), metrics


def build_model(run: ClrsRun) -> ClrsNet:
    return ClrsNet(algorithms(run), dim=run.dim, triplet_dim=run.triplet_dim, teacher_forcing=run.teacher_forcing)


def build(run: ClrsRun) -> Built:
    from clrs.evaluate import scores

    names, seed = algorithms(run), run.trainer.seed
    if min(run.sizes) < 2:
        raise ValueError(f"--sizes must be at least 2 nodes, got {run.sizes}")
    rng = np.random.default_rng(seed)
    train = [ClrsData(a, run.sizes, run.examples, int(rng.integers(2**31)), TRAIN_P, random_pos=True)
             for a in names]
    valid = [ClrsData(a, (max(run.sizes),), VALID_EXAMPLES, int(rng.integers(2**31)), TRAIN_P, random_pos=True)
             for a in names]

    def eval_metrics(model: ClrsNet) -> dict[str, float]:
        per = {a: scores(model, data)["score"] for a, data in zip(names, valid)}
        return {"val_error": 1.0 - float(np.mean(list(per.values()))), **{f"val_{a}": s for a, s in per.items()}}

    return Built(build_model(run), Mixture(train), Mixture(valid), collate_mixed, loss_fn, eval_metrics)


RECIPE = Recipe("clrs", "a learned executor of classical algorithms (triplet-GMPNN on CLRS executions)", ClrsRun,
                build, build_model)
