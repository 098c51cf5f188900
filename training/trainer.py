"""The training loop every domain shares.

A domain supplies a model, a dataset, a collate function and ``loss_fn(model, batch) -> (loss, metrics)``;
the Trainer does the rest: seeded data order, DistributedDataParallel under torchrun, LR schedule,
gradient clipping, periodic evaluation, metric logs and plots, atomic checkpoints and exact resumes.
Callbacks hook into every step (after the backward pass, after the optimiser step) and keep their state in
the checkpoint; sparse training (``TrainerConfig.sparse``, training/sparsity.py) is one.

Data order: each epoch is a permutation seeded by ``(seed, epoch)`` and dealt to ranks by
``DistributedSampler``; a global batch of B is B / world_size samples per rank. A single-process run
and a torchrun run with the same global batch therefore see the same samples in every step.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from datasets.atomic import atomic_open
from datasets.registry import require_at_least
from training import distributed, schedules
from training.allocator import retain_freed_memory
from training.checkpoint import RESUMABLE, list_checkpoints, load_checkpoint, remove_best, save_best, save_checkpoint
from training.metrics import MetricLog
from training.optimizers import OPTIMIZERS, make_optimizer
from training.ema import EMA
from training.precision import autocast, resolve_precision
from training.seeding import rng_state, seed_everything, set_rng_state
from training.sparsity import Sparsifier, SparsityConfig

LossFn = Callable[[nn.Module, object], tuple[torch.Tensor, dict[str, float]]]
EvalMetrics = Callable[[nn.Module], dict[str, float]]  # the model (eval mode, no grad) -> extra evaluation metrics


class Callback(Protocol):
    """Hooks into every training step; ``step`` counts completed steps. Its state goes into the checkpoint."""

    def start(self, optimizer: torch.optim.Optimizer) -> None:
        """Before the first step of a new run (a resumed run restores the state instead)."""

    def after_backward(self, step: int) -> None:
        """The gradients of step ``step + 1`` are in the parameters (summed over processes), before clipping."""

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        """Step ``step`` is complete: the optimiser and the learning rate have moved on."""

    def metrics(self) -> dict[str, float]:
        """Logged with the training metrics."""

    def selectable(self, step: int) -> bool:
        """Whether the model after step ``step`` may become ``best.pt`` (say, not before pruning is done)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainerConfig:
    """Defaults run on a 2-core laptop; domains override what their paper prescribes."""

    run_dir: str = "runs/train"    # where config.json, checkpoints, metric logs and plots go
    steps: int = 1000              # optimiser steps
    batch_size: int = 8            # global: split evenly over torchrun processes
    lr: float = 1e-3               # peak learning rate
    schedule: str = "constant"     # constant | exponential (GNS) | cosine | flat_decay (weaver: flat, then to lr/100)
    lr_final: float = 1e-6         # exponential: asymptote; cosine: final lr
    decay_steps: int | None = None  # exponential: steps per factor-10 decay (None: a quarter of the run's steps,
    #                                 GNS's 5M of 20M, so the last lr is lr_final + 1e-4 (lr - lr_final))
    warmup_steps: int = 0          # linear warm-up steps
    optimizer: str = field(default="adamw", metadata={"choices": OPTIMIZERS})  # ranger: weaver-core's
    weight_decay: float = 0.0      # decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.999)   # Adam moment decay rates
    grad_clip: float | None = 1.0  # max global gradient norm; None disables
    ema_decay: float | None = None  # keep an exponential moving average of the weights with this decay (e.g.
    #                                 0.999); evaluation, best.pt and loading use it (None: no average)
    seed: int = 0                  # seeds the model, the data order and every sampler
    log_every: int = 10            # steps between logged training metrics
    eval_every: int | None = None  # steps between evaluations (None: a fifth of the steps; 0: only at the end)
    checkpoint_every: int | None = None  # steps between checkpoints (None: a tenth of the steps)
    keep_checkpoints: int | None = 3     # newest checkpoints kept (None: all)
    select_by: str | None = None   # an evaluation metric: checkpoints/best.pt keeps the weights where it was lowest,
    #                                and evaluation commands load them (None: they load the newest checkpoint)
    resume: bool = False           # continue from the newest checkpoint in run_dir
    overwrite: bool = False        # replace an earlier run in run_dir (without it or resume, such a run_dir is refused)
    device: str = "auto"           # auto (cuda if available), cpu, cuda or cuda:N
    precision: str = "auto"        # auto (bf16 where the device multiplies it fast, else fp32), fp32 or bf16
    progress: bool = True          # show a progress bar
    sparse: SparsityConfig = field(default_factory=SparsityConfig)  # sparse training (training/sparsity.py)

    def for_demo(self, run_dir: str, steps: int, seed: int, **changes) -> TrainerConfig:
        """This configuration for a short demonstration run: ``steps`` steps into ``run_dir`` (replacing an
        earlier demo there), evaluated and checkpointed once, at the end."""
        return dataclasses.replace(self, run_dir=run_dir, steps=steps, seed=seed, overwrite=True, eval_every=0,
                                   checkpoint_every=steps, **changes)

    def resolved(self) -> TrainerConfig:
        """This configuration, checked, with every cadence left to its default (None) set from ``steps``."""
        optional = {name: (value, minimum) for name, value, minimum in (
            ("decay_steps", self.decay_steps, 1), ("eval_every", self.eval_every, 0),
            ("checkpoint_every", self.checkpoint_every, 1), ("keep_checkpoints", self.keep_checkpoints, 1),
            ("grad_clip", self.grad_clip, 1e-12), ("ema_decay", self.ema_decay, 1e-12)) if value is not None}
        require_at_least(steps=(self.steps, 1), batch_size=(self.batch_size, 1), lr=(self.lr, 1e-12),
                         lr_final=(self.lr_final, 0.0), warmup_steps=(self.warmup_steps, 0),
                         weight_decay=(self.weight_decay, 0.0), log_every=(self.log_every, 1), **optional)
        if not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise ValueError(f"betas: each must be in [0, 1), got {self.betas}")
        if self.ema_decay is not None and self.ema_decay >= 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        self.sparse.check(ema=self.ema_decay is not None)
        return dataclasses.replace(
            self, precision=resolve_precision(self.precision, self.device),
            decay_steps=max(1, self.steps // 4) if self.decay_steps is None else self.decay_steps,
            eval_every=max(1, self.steps // 5) if self.eval_every is None else self.eval_every,
            checkpoint_every=max(1, self.steps // 10) if self.checkpoint_every is None else self.checkpoint_every)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the block (main thread only), so it checkpoints like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``"gns.latent: 16 -> 32"`` for every setting outside the trainer's that differs between two saved runs."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key == "trainer" and not prefix:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def move_to(batch: object, device: torch.device) -> object:
    """Move tensors, objects with ``.to`` (e.g. GraphBatch), and dicts/lists/tuples of them."""
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch.to(device) if hasattr(batch, "to") else batch


def _batch_len(batch: object) -> int:
    """Samples in a collated batch: graphs in a GraphBatch, rows of a tensor, or of its first field."""
    if hasattr(batch, "num_graphs"):
        return int(batch.num_graphs)
    if isinstance(batch, dict) and "batch" in batch:  # particles of several samples, flattened
        return int(batch["batch"].max()) + 1 if batch["batch"].numel() else 0
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, dict):
        return _batch_len(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        return _batch_len(batch[0])
    if hasattr(batch, "__len__"):  # a domain's batch class that knows its size
        return len(batch)
    raise TypeError(f"cannot tell the number of samples in a batch of type {type(batch).__name__}")


class Trainer:
    """Fit ``model`` on ``train_data`` by minimising ``loss_fn``; see the module docstring."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, train_data: Dataset, config: TrainerConfig,
                 collate_fn: Callable | None = None, eval_data: Dataset | None = None,
                 run_config: dict | None = None, eval_metrics: EvalMetrics | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        config = config.resolved()
        retain_freed_memory()  # large activations reused, not page-faulted in every step (training/allocator.py)
        self.cfg, self.loss_fn, self.collate_fn = config, loss_fn, collate_fn
        self.train_data, self.eval_data, self.eval_metrics = train_data, eval_data, eval_metrics
        self.ctx = distributed.setup(config.device)
        if config.batch_size % self.ctx.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by {self.ctx.world_size} processes")
        self.local_batch = config.batch_size // self.ctx.world_size
        self.steps_per_epoch = len(train_data) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"training set has {len(train_data)} samples, fewer than one batch of "
                             f"{config.batch_size}")
        self.model = model.to(self.ctx.device)
        self.module = self._wrap(self.model)
        self.ema = EMA(self.model, config.ema_decay) if config.ema_decay is not None else None
        self.optimizer = self._optimizer(self._trained_parameters(), config.lr)
        sparse = [Sparsifier(self.model, config.sparse, config.steps, config.seed)] if config.sparse.sparsity else []
        self.callbacks: list[Callback] = [*sparse, *callbacks]
        if self.callbacks and type(self)._train_step is not Trainer._train_step:
            raise ValueError(f"{type(self).__name__} runs its own training step: callbacks and sparse training "
                             "are not supported by it")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._schedule())
        self.run_dir = Path(config.run_dir)
        # what config.json holds: a recipe's run (which includes this config), or this config alone
        self.resolved = {**(run_config or {"trainer": dataclasses.asdict(config)}), "world_size": self.ctx.world_size}
        self.step = 0
        self.best: tuple[float, int] | None = None  # (lowest select_by value, its step)
        self.train_seconds, self._step_started = 0.0, time.perf_counter()

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision region of the forward passes and losses (a no-op in fp32); backward runs outside."""
        return autocast(self.cfg.precision, self.ctx.device)

    def _wrap(self, module: nn.Module) -> nn.Module:
        """``module`` under DistributedDataParallel when running under torchrun."""
        return DistributedDataParallel(module) if self.ctx.distributed else module

    def _trained_parameters(self) -> Iterator[nn.Parameter]:
        return self.model.parameters()

    def _optimizer(self, parameters: Iterator[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        return make_optimizer(self.cfg.optimizer, parameters, lr, tuple(self.cfg.betas), self.cfg.weight_decay)

    def _schedule(self) -> schedules.Factor:
        c = self.cfg
        if c.schedule == "constant":
            return schedules.constant(c.warmup_steps)
        if c.schedule == "exponential":
            return schedules.exponential_decay(c.lr, c.lr_final, c.decay_steps)
        if c.schedule == "cosine":
            return schedules.cosine(c.steps, c.warmup_steps, c.lr_final / c.lr)
        if c.schedule == "flat_decay":
            return schedules.flat_decay(c.steps)
        raise ValueError(f"schedule must be constant, exponential, cosine or flat_decay, got {c.schedule!r}")

    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        sampler = DistributedSampler(self.train_data, num_replicas=self.ctx.world_size, rank=self.ctx.rank,
                                     shuffle=True, seed=self.cfg.seed, drop_last=True)
        sampler.set_epoch(epoch)
        indices = list(sampler)[skip_batches * self.local_batch:]
        # its own generator, so starting a loader (as a resume does mid-epoch) never draws from the global RNG
        generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        return DataLoader(self.train_data, batch_size=self.local_batch, sampler=indices, drop_last=True,
                          collate_fn=self.collate_fn, generator=generator)

    def _state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step,
                "rng": distributed.all_gather(rng_state()), "config": self.resolved, **self._extra_state(),
                **({"best": list(self.best)} if self.best else {}),
                **({"callbacks": [cb.state_dict() for cb in self.callbacks]} if self.callbacks else {}),
                **({"ema": self.ema.state_dict()} if self.ema else {})}

    def _extra_state(self) -> dict:
        """More checkpoint entries of a subclass (e.g. a second optimiser)."""
        return {}

    def _load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`_extra_state` saved."""

    def _checkpoint(self) -> None:
        state = self._state()  # every rank joins the RNG gather
        if self.ctx.is_main:
            save_checkpoint(self.run_dir, self.step, state, keep=self.cfg.keep_checkpoints)
            self.log.flush()
        distributed.barrier()

    def _restore(self) -> int | None:
        found = list_checkpoints(self.run_dir)
        if not found:
            return None
        # on the CPU: RNG states must be; load_state_dict moves the rest
        state = load_checkpoint(found[-1], required=RESUMABLE)
        if len(state["rng"]) != self.ctx.world_size:
            raise ValueError(f"{found[-1]}: saved by {len(state['rng'])} processes, resuming with "
                             f"{self.ctx.world_size}; resume with the same process count")
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError:
            changed = _changes(state.get("config", {}).get("run", {}), self.resolved.get("run", {}))
            raise ValueError(f"{found[-1]}: does not fit the network of this run"
                             f"{' (changed since: ' + '; '.join(changed) + ')' if changed else ''}; resume with "
                             f"the settings in {self.run_dir / 'config.json'} or train a new run") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            if "ema" not in state:
                raise ValueError(f"{found[-1]}: has no weight average to continue; resume without --ema-decay")
            self.ema.load_state_dict(state["ema"])
        self._load_extra_state(state)
        saved = state.get("callbacks", [])
        if len(saved) != len(self.callbacks):
            raise ValueError(f"{found[-1]}: saved with {len(saved)} callbacks (sparse training is one), resuming "
                             f"with {len(self.callbacks)}; resume with the settings in {self.run_dir / 'config.json'}")
        for callback, callback_state in zip(self.callbacks, saved):
            callback.load_state_dict(callback_state)
        set_rng_state(state["rng"][self.ctx.rank])
        self.best = (float(state["best"][0]), int(state["best"][1])) if "best" in state else None
        self.step = state["step"]
        return self.step

    def fit(self) -> dict[str, float]:
        """Train to ``config.steps``; returns the last evaluation (or training) metrics."""
        seed_everything(self.cfg.seed + self.ctx.rank)
        earlier = list_checkpoints(self.run_dir)
        if earlier and not (self.cfg.resume or self.cfg.overwrite):  # every rank sees the same folder: all raise
            raise ValueError(f"{self.run_dir}: holds an earlier run (checkpoints up to {earlier[-1].stem}); continue "
                             "it with --resume or replace it with --overwrite")
        resumed = self._restore() if self.cfg.resume else None
        if resumed is None:
            for callback in self.callbacks:
                callback.start(self.optimizer)
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if resumed is None:  # an overwritten run leaves none of its checkpoints
                for stale in list_checkpoints(self.run_dir):
                    stale.unlink()
                remove_best(self.run_dir)
            with atomic_open(self.run_dir / "config.json") as fh:
                json.dump(self.resolved, fh, indent=2, default=str)
            self.log = MetricLog(self.run_dir, resume_step=resumed if resumed is not None else -1)
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not (self.cfg.progress and self.ctx.is_main),
                   desc=f"train {self.run_dir.name}", dynamic_ncols=True)
        last: dict[str, float] = {}
        try:
            with _sigterm_as_interrupt():  # a SIGTERM (kill, a batch system) stops like Ctrl-C
                while self.step < self.cfg.steps:
                    epoch, skip = divmod(self.step, self.steps_per_epoch)
                    for batch in self._loader(epoch, skip):
                        self._step_started = time.perf_counter()
                        last = self._train_step(batch)
                        bar.update(1)
                        bar.set_postfix(loss=f"{last['loss']:.4g}", lr=f"{last['lr']:.2e}")
                        if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
                            last = self.evaluate() or last
                        if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps:
                            self._checkpoint()
                        if self.step >= self.cfg.steps:
                            break
        except KeyboardInterrupt:
            if not self.ctx.distributed:  # other ranks would wait forever in the checkpoint's gather
                self._checkpoint()
            raise
        finally:
            bar.close()
        if self.eval_data is not None and (not self.cfg.eval_every or self.step % self.cfg.eval_every):
            last = self.evaluate() or last  # the final model is always evaluated
            self._checkpoint()
        return last

    def _train_step(self, batch: object) -> dict[str, float]:
        self.module.train()
        with self.autocast():
            loss, metrics = self.loss_fn(self.module, move_to(batch, self.ctx.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for callback in self.callbacks:
            callback.after_backward(self.step)
        if self.cfg.grad_clip is not None:
            grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip))
            metrics = {**metrics, "grad_norm": grad_norm}
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self._advance()
        for callback in self.callbacks:
            callback.after_step(self.step, self.optimizer)
            metrics = {**metrics, **callback.metrics()}
        return self._record(loss, metrics, lr)

    def _advance(self) -> None:
        """After the optimiser step(s): the learning rate, the step count and the weight average move on."""
        self.scheduler.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.model)

    @property
    def evaluated_model(self) -> nn.Module:
        """The weights evaluation scores, best.pt keeps and loading uses: the average when there is one."""
        return self.ema.shadow if self.ema is not None else self.model

    def _record(self, loss: torch.Tensor, metrics: dict[str, float], lr: float) -> dict[str, float]:
        """Average a step's loss and metrics over processes and log them every ``log_every`` steps, with the
        seconds this process has spent in training steps (not evaluation or checkpoints) since it started."""
        self.train_seconds += time.perf_counter() - self._step_started
        names = ["loss", *metrics]
        local = torch.tensor([float(loss.detach()), *map(float, metrics.values())], dtype=torch.float64,
                             device=self.ctx.device)  # on the device: nccl reduces GPU tensors only
        mean = distributed.all_reduce_sum(local).cpu() / self.ctx.world_size
        row = {**{k: float(v) for k, v in zip(names, mean)}, "lr": lr}
        if self.ctx.is_main and (self.step % self.cfg.log_every == 0 or self.step == 1):
            self.log.log({"step": self.step, "split": "train", **row, "train_seconds": self.train_seconds})
        return row

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean of ``loss_fn`` metrics over the eval set (sharded over processes, weighted by samples), and
        the ``eval_metrics`` of the model (a validation rollout's error, say)."""
        if self.eval_data is None:
            return {}
        self.module.eval()
        shard = list(range(self.ctx.rank, len(self.eval_data), self.ctx.world_size))
        loader = DataLoader(self.eval_data, batch_size=self.local_batch, sampler=shard, collate_fn=self.collate_fn,
                            generator=torch.Generator().manual_seed(0))
        sums: dict[str, float] = {}
        count = 0
        for batch in loader:
            n = _batch_len(batch)
            with self.autocast():
                loss, metrics = self.loss_fn(self.evaluated_model, move_to(batch, self.ctx.device))
            for k, v in {"loss": float(loss), **metrics}.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            count += n
        names = sorted(sums)
        totals = distributed.all_reduce_sum(torch.tensor([count] + [sums[k] for k in names], dtype=torch.float64,
                                                         device=self.ctx.device)).cpu()
        result = {k: float(v / totals[0]) for k, v in zip(names, totals[1:])}
        if self.eval_metrics is not None:  # every process computes them: the same numbers, no communication
            result.update(self.eval_metrics(self.evaluated_model))
        if self.ctx.is_main:
            self.log.log({"step": self.step, "split": "eval", **result})
        if self.cfg.select_by is not None and all(cb.selectable(self.step) for cb in self.callbacks):
            self._select(result)
        return result

    def _select(self, result: dict[str, float]) -> None:
        """Keep the weights in ``checkpoints/best.pt`` when ``select_by`` reached a new low."""
        name = self.cfg.select_by
        if name not in result:
            raise ValueError(f"select_by: the evaluation has no metric {name!r}; it has {', '.join(sorted(result))}")
        if self.best is None or result[name] < self.best[0]:
            self.best = (result[name], self.step)
            if self.ctx.is_main:
                save_best(self.run_dir, {"model": self.evaluated_model.state_dict(), "step": self.step,
                                         name: result[name]})
