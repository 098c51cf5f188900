"""Adversarial training on the shared loop: ``d_steps`` discriminator updates per generator update.

The model holds ``.generator`` and ``.discriminator``. Each has its own Adam optimiser (the generator's is the
Trainer's, with its LR schedule; the discriminator's keeps ``d_lr``) and, under torchrun, its own
DistributedDataParallel wrapper, so each update synchronises only the gradients it applies. A domain supplies
:class:`GanLosses`:

    generator(generator, discriminator, batch) -> (loss, metrics)
    discriminator(generator, discriminator, batch) -> (loss, metrics)
    evaluation(model, batch) -> (loss, metrics)        # the Trainer's periodic evaluation
 Every update sees the same batch.
The part being trained comes wrapped (DDP under torchrun) and must be called once per loss; the other part
comes unwrapped (the discriminator frozen in the generator's update, so no gradient reaches it, and in eval
mode: a batch of generated samples alone would otherwise set its batch-norm statistics, and scores against
those say nothing about real data).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from training.trainer import EvalMetrics, LossFn, Trainer, TrainerConfig, move_to

GanLossFn = Callable[[nn.Module, nn.Module, object], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class AdversarialConfig(TrainerConfig):
    d_lr: float = 2e-4             # discriminator learning rate (constant)
    d_steps: int = 2               # discriminator updates per generator update


@dataclass(frozen=True)
class GanLosses:
    """The three losses of adversarial training; see the module docstring."""

    generator: GanLossFn
    discriminator: GanLossFn
    evaluation: LossFn


class AdversarialTrainer(Trainer):
    """See the module docstring; ``lr``, ``betas`` and the schedule of ``config`` apply to the generator."""

    def __init__(self, model: nn.Module, losses: GanLosses, train_data: Dataset, config: AdversarialConfig,
                 collate_fn: Callable | None = None, eval_data: Dataset | None = None,
                 run_config: dict | None = None, eval_metrics: EvalMetrics | None = None) -> None:
        super().__init__(model, losses.evaluation, train_data, config, collate_fn, eval_data, run_config,
                         eval_metrics)
        self.g_loss_fn, self.d_loss_fn = losses.generator, losses.discriminator
        self.generator = super()._wrap(self.model.generator)
        self.discriminator = super()._wrap(self.model.discriminator)
        self.d_optimizer = self._optimizer(self.model.discriminator.parameters(), config.d_lr)

    def _wrap(self, module: nn.Module) -> nn.Module:
        return module  # the parts are wrapped one by one

    def _trained_parameters(self) -> Iterator[nn.Parameter]:
        return self.model.generator.parameters()

    def _extra_state(self) -> dict:
        return {"d_optimizer": self.d_optimizer.state_dict()}

    def _load_extra_state(self, state: dict) -> None:
        self.d_optimizer.load_state_dict(state["d_optimizer"])

    def _update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, parameters: Iterator) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(list(parameters), self.cfg.grad_clip or float("inf"))
        optimizer.step()
        return float(norm)

    def _train_step(self, batch: object) -> dict[str, float]:
        self.model.train()
        batch = move_to(batch, self.ctx.device)
        d_metrics: dict[str, float] = {}
        for _ in range(self.cfg.d_steps):  # d_steps = 0 trains the generator alone
            with self.autocast():
                d_loss, d_metrics = self.d_loss_fn(self.model.generator, self.discriminator, batch)
            d_norm = self._update(d_loss, self.d_optimizer, self.model.discriminator.parameters())
            d_metrics = {**d_metrics, "d_loss": float(d_loss.detach()), "d_grad_norm": d_norm}
        self.model.discriminator.requires_grad_(False).eval()  # frozen, and batch norm on its running stats
        try:
            with self.autocast():
                g_loss, g_metrics = self.g_loss_fn(self.generator, self.model.discriminator, batch)
            lr = self.optimizer.param_groups[0]["lr"]
            g_norm = self._update(g_loss, self.optimizer, self.model.generator.parameters())
        finally:
            self.model.discriminator.requires_grad_(True).train()
        self._advance()
        metrics = {**g_metrics, **d_metrics, "g_grad_norm": g_norm}
        return self._record(g_loss, metrics, lr)
