"""Sparse training for any model on the shared Trainer: gradual magnitude pruning, RigL and Top-KAST.

Which weights: the weight of every ``nn.Linear`` and convolution; biases, norms, embeddings and the first such
layer (with ``sparse_dense_first``: it sees the raw inputs) stay dense. ``sparsity`` is the fraction of zeros
among the sparsified weights at the end of training. Per-layer densities (:func:`layer_densities`):
``erk`` (Erdos-Renyi-Kernel, Evci et al. 2020: density proportional to sum(shape) / prod(shape), scaled to the
budget; a layer that would exceed 1 is dense and the rest are scaled again), ``uniform``, or, for GMP only,
``global`` (one magnitude ranking over all layers together).

Methods (``t``: completed steps; ``dT``: ``sparse_update_every``; ``T``: the run's steps):

- ``gmp`` (Zhu & Gupta 2017): dense at first; every dT steps from ``t0 = sparse_begin T`` to
  ``t1 = sparse_end T`` each layer is pruned by magnitude to s_t = s (1 - (1 - (t - t0) / (t1 - t0))^3)
  (:func:`gmp_sparsity`); pruned weights never return.
- ``rigl`` (Evci et al. 2020): random masks at the layer densities from step 0; every dT steps until
  ``sparse_end T`` each layer drops the fraction f_t = a/2 (1 + cos(pi t / (sparse_end T))) of its active
  weights with the smallest magnitude (a = ``sparse_update_fraction``) and grows as many inactive ones with
  the largest magnitude of the dense gradient of that step (:func:`drop_and_grow`); grown weights and their
  optimiser state start at zero.
- ``topkast`` (Jayakumar et al. 2020): the dense parameters theta are kept here; the forward pass uses
  A = the top-K of |theta| per layer at its density D, gradients and updates reach only B, the top of |theta|
  at the backward density (``1 - sparse_backward``; default min(1, 2D)), which contains A; the exploration
  penalty (l/2) (sum_A theta^2 + sum_{B\\A} theta^2 / D), l = ``sparse_penalty``, is added to the gradient; A and
  B are chosen again every dT steps for the whole run.

Between optimiser steps the model's weights are the sparse ones, so checkpoints, evaluation and loading see
the sparse network; the masks (and Top-KAST's theta) are in the checkpoint and a resumed run is bit-identical.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from datasets.registry import require_at_least

METHODS = ("gmp", "rigl", "topkast")
DISTRIBUTIONS = ("erk", "uniform", "global")


@dataclass
class SparsityConfig:
    sparsity: float = 0.0          # fraction of zeros in the sparsified weights at the end (0: dense training)
    sparse_method: str = field(default="rigl", metadata={"choices": METHODS})  # gmp | rigl | topkast
    sparse_distribution: str = field(default="erk", metadata={"choices": DISTRIBUTIONS})  # per-layer densities
    sparse_dense_first: bool = True  # keep the first Linear/conv layer dense
    sparse_update_every: int = 100   # steps between mask updates (rigl, topkast) or pruning steps (gmp)
    sparse_update_fraction: float = 0.3  # rigl: share of each layer's active weights moved at step 0 (cosine-decayed)
    sparse_begin: float = 0.1      # gmp: share of the run after which pruning starts
    sparse_end: float = 0.75       # gmp, rigl: share of the run after which the masks stay fixed
    sparse_backward: float | None = None  # topkast: sparsity of the backward set B (None: twice A's density)
    sparse_penalty: float = 1e-4   # topkast: exploration penalty coefficient

    def check(self, ema: bool) -> None:
        """Raise ValueError on settings that cannot work together."""
        require_at_least(sparse_update_every=(self.sparse_update_every, 1))
        for name in ("sparsity", "sparse_update_fraction", "sparse_begin", "sparse_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.sparsity >= 1.0:
            raise ValueError("sparsity must be below 1 (1 removes every weight)")
        if self.sparse_method not in METHODS:
            raise ValueError(f"sparse_method must be one of {', '.join(METHODS)}, got {self.sparse_method!r}")
        if self.sparse_distribution not in DISTRIBUTIONS:
            raise ValueError(f"sparse_distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                             f"got {self.sparse_distribution!r}")
        if self.sparse_distribution == "global" and self.sparse_method != "gmp":
            raise ValueError("sparse_distribution 'global' is for gmp; rigl and topkast need per-layer densities")
        if self.sparse_method == "gmp" and self.sparse_begin >= self.sparse_end:
            raise ValueError(f"sparse_begin ({self.sparse_begin}) must be before sparse_end ({self.sparse_end})")
        if self.sparse_backward is not None and not 0.0 <= self.sparse_backward <= self.sparsity:
            raise ValueError(f"sparse_backward must be in [0, sparsity = {self.sparsity}], got {self.sparse_backward}")
        if self.sparsity > 0 and ema:
            raise ValueError("sparse training keeps no weight average: the average of sparse weights is dense; "
                             "train without --ema-decay")


def sparse_weights(model: nn.Module, dense_first: bool = True) -> list[tuple[str, nn.Parameter]]:
    """``(name, weight)`` of the layers sparse training acts on: every ``nn.Linear`` and convolution weight in
    registration order, less the first when ``dense_first``."""
    layers = [(f"{name}.weight" if name else "weight", module.weight) for name, module in model.named_modules()
              if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd))]
    return layers[1:] if dense_first else layers


def layer_densities(shapes: Sequence[torch.Size], density: float, distribution: str) -> list[float]:
    """Per-layer densities whose weighted mean is ``density``.

    Args:
        shapes: the layers' weight shapes ``[out, in, *kernel]``.
        density: the overall fraction of weights kept, 1 - sparsity.
        distribution: ``uniform`` (every layer at ``density``) or ``erk`` (proportional to
            sum(shape) / prod(shape); layers that would exceed 1 are dense, the others scaled again).
    """
    if distribution == "uniform":
        return [density] * len(shapes)
    if distribution != "erk":
        raise ValueError(f"per-layer densities are erk or uniform, got {distribution!r}")
    sizes = [math.prod(s) for s in shapes]
    raw = [sum(s) / math.prod(s) for s in shapes]
    dense: set[int] = set()
    while True:
        budget = density * sum(sizes) - sum(sizes[i] for i in dense)
        scale = budget / sum(raw[i] * sizes[i] for i in range(len(shapes)) if i not in dense)
        over = {i for i in range(len(shapes)) if i not in dense and scale * raw[i] > 1.0}
        if not over:
            return [1.0 if i in dense else scale * raw[i] for i in range(len(shapes))]
        dense |= over


def kept(size: int, density: float) -> int:
    """Weights kept of a layer of ``size`` at ``density``: the nearest count, at least one."""
    return min(size, max(1, round(density * size)))


def gmp_sparsity(step: int, final: float, begin: int, end: int) -> float:
    """Zhu & Gupta's cubic schedule: 0 before ``begin``, ``final`` from ``end``,
    ``final (1 - (1 - (step - begin) / (end - begin))^3)`` between."""
    progress = min(1.0, max(0.0, (step - begin) / (end - begin)))
    return final * (1.0 - (1.0 - progress) ** 3)


def top_mask(score: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the ``k`` largest entries of ``score`` (same shape)."""
    mask = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
    mask[torch.topk(score.flatten(), k).indices] = True
    return mask.view_as(score)


def drop_and_grow(weight: torch.Tensor, mask: torch.Tensor, grad: torch.Tensor, k: int) \
        -> tuple[torch.Tensor, torch.Tensor]:
    """RigL's connectivity update of one layer: drop the ``k`` active weights of smallest magnitude, then grow
    the ``k`` inactive ones (the just-dropped included) of largest dense-gradient magnitude.

    Returns:
        (new mask, grown): boolean tensors shaped like ``weight``; ``grown`` marks the connections that start
        again from zero.
    """
    flat_mask = mask.flatten()
    drop = torch.topk(torch.where(flat_mask, weight.abs().flatten(), math.inf), k, largest=False).indices
    after_drop = flat_mask.clone()
    after_drop[drop] = False
    grow = torch.topk(torch.where(after_drop, -math.inf, grad.abs().flatten()), k).indices
    new, grown = after_drop.clone(), torch.zeros_like(flat_mask)
    new[grow], grown[grow] = True, True
    return new.view_as(mask), grown.view_as(mask)


def forward_flops(model: nn.Module, *inputs: object, densities: Sequence[float] | None = None) \
        -> tuple[float, float]:
    """FLOPs of one forward pass (torch's FlopCounterMode), dense and with the zero weights of the sparsified
    layers skipped: what a sparse kernel could save at most.

    Args:
        model: the network.
        inputs: its forward arguments.
        densities: per-layer densities of :func:`sparse_weights` (first layer dense) to assume instead of
            counting the zero weights of every Linear and convolution layer (to plan a run before training it).
    """
    from torch.utils.flop_counter import FlopCounterMode

    # with grad mode on: FlopCounterMode's module tracker refuses views of parameters made under no_grad
    with FlopCounterMode(display=False) as counter:
        model(*inputs)
    counts = counter.get_flop_counts()
    if densities is not None:
        zeros = {id(w): 1.0 - d for (_, w), d in zip(sparse_weights(model), densities, strict=True)}
    else:
        zeros = {id(w): float((w == 0).float().mean()) for _, w in sparse_weights(model, dense_first=False)}
    total, skipped = float(counter.get_total_flops()), 0.0
    for name, module in model.named_modules():
        if id(getattr(module, "weight", None)) in zeros:
            skipped += sum(counts.get(f"{type(model).__name__}.{name}", {}).values()) * zeros[id(module.weight)]
    return total, total - skipped


def _zero_optimizer_state(optimizer: torch.optim.Optimizer, param: nn.Parameter, where: torch.Tensor) -> None:
    """Zero every per-entry optimiser buffer of ``param`` (Adam's moments, Lookahead's slow weights) at ``where``."""
    for opt in (optimizer, getattr(optimizer, "inner", None)):
        if opt is None:
            continue
        for value in opt.state.get(param, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value.masked_fill_(where, 0)


class Sparsifier:
    """The Trainer callback of sparse training; see the module docstring.

    Args:
        model: the network (its Linear and conv weights are sparsified, see :func:`sparse_weights`).
        config: the sparsity settings.
        steps: the run's optimiser steps (the schedules are fractions of it).
        seed: seeds RigL's random initial masks (its own generator: the global RNG streams are untouched).
    """

    def __init__(self, model: nn.Module, config: SparsityConfig, steps: int, seed: int) -> None:
        self.cfg, self.steps, self.seed = config, steps, seed
        layers = sparse_weights(model, config.sparse_dense_first)
        if not layers:
            raise ValueError("sparse training: the model has no Linear or convolution weights to sparsify "
                             "(besides the first layer, which sparse_dense_first keeps dense)")
        self.names, self.weights = [name for name, _ in layers], [weight for _, weight in layers]
        density = 1.0 - config.sparsity
        shapes = [w.shape for w in self.weights]
        self.densities = [density] * len(shapes) if config.sparse_distribution == "global" else \
            layer_densities(shapes, density, config.sparse_distribution)
        backward = 1.0 - config.sparse_backward if config.sparse_backward is not None else None
        self.backward_densities = [min(1.0, 2.0 * d) if backward is None else max(d, backward)
                                   for d in self.densities]
        self.masks: list[torch.Tensor] | None = None
        self.theta: list[torch.Tensor] = []      # topkast: the dense parameters
        self.backward: list[torch.Tensor] = []   # topkast: the masks of B
        self._grads: list[torch.Tensor | None] = []  # rigl: dense gradients of an update step
        self._sparsity = 0.0

    # the callback interface of training.trainer.Trainer

    def start(self, optimizer: torch.optim.Optimizer) -> None:
        """Before the first step of a new run: the initial masks, applied to the weights and optimiser state."""
        method = self.cfg.sparse_method
        if method == "gmp":
            self.masks = [torch.ones_like(w, dtype=torch.bool) for w in self.weights]
        elif method == "rigl":
            g = torch.Generator().manual_seed(self.seed * 7919 + 17)
            self.masks = []
            for w, d in zip(self.weights, self.densities):
                mask = torch.zeros(w.numel(), dtype=torch.bool)
                mask[torch.randperm(w.numel(), generator=g)[:kept(w.numel(), d)]] = True
                self.masks.append(mask.view_as(w).to(w.device))
        else:
            self.theta = [w.detach().clone() for w in self.weights]
            self._choose_topkast_sets()
        with torch.no_grad():
            for w, m in zip(self.weights, self.masks):
                w.mul_(m)
                _zero_optimizer_state(optimizer, w, ~m)
        self._count()

    @torch.no_grad()
    def after_backward(self, step: int) -> None:
        """Gradients of step ``step + 1`` are in: mask them (and keep RigL's dense ones on an update step)."""
        if self._is_update(step + 1) and self.cfg.sparse_method == "rigl":
            self._grads = [None if w.grad is None else w.grad.detach().clone() for w in self.weights]
        if self.cfg.sparse_method != "topkast":
            for w, m in zip(self.weights, self.masks):
                if w.grad is not None:
                    w.grad.mul_(m)
            return
        lam = self.cfg.sparse_penalty
        for w, a, b, theta, d in zip(self.weights, self.masks, self.backward, self.theta, self.densities):
            if w.grad is not None:
                penalty = torch.where(a, theta, theta / d) * b
                w.grad.mul_(b).add_(penalty, alpha=lam)
            w.copy_(theta)  # the optimiser updates the dense parameters (on B: the gradient is zero elsewhere)

    @torch.no_grad()
    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        """After the optimiser step that completed step ``step``: update the masks if due, apply them."""
        method, update = self.cfg.sparse_method, self._is_update(step)
        if method == "topkast":
            for w, theta in zip(self.weights, self.theta):
                theta.copy_(w)
            if update:
                self._choose_topkast_sets()
        elif update:
            if method == "rigl":
                self._rigl_update(step, optimizer)
            else:
                self._prune(step, optimizer)
        for w, m in zip(self.weights, self.masks):
            w.mul_(m)
        if update:
            self._count()

    def selectable(self, step: int) -> bool:
        """Whether the model after step ``step`` may be kept as the selected checkpoint: once GMP has pruned to
        its final sparsity (RigL and Top-KAST hold it from the start)."""
        return self.cfg.sparse_method != "gmp" or step >= math.ceil(self.cfg.sparse_end * self.steps)

    def metrics(self) -> dict[str, float]:
        """The fraction of zeros in the sparsified layers' forward weights (their masks) now."""
        return {"sparsity": self._sparsity}

    def _count(self) -> None:
        self._sparsity = 1.0 - sum(int(m.sum()) for m in self.masks) / sum(m.numel() for m in self.masks)

    def state_dict(self) -> dict:
        return {"names": self.names, "masks": self.masks, "theta": self.theta, "backward": self.backward}

    def load_state_dict(self, state: dict) -> None:
        if list(state["names"]) != self.names:
            raise ValueError("the checkpoint's sparse layers differ from this model's: "
                             f"{state['names'][:3]}... against {self.names[:3]}...")
        device = self.weights[0].device
        self.masks = [m.to(device) for m in state["masks"]]
        self.theta = [t.to(device) for t in state["theta"]]
        self.backward = [b.to(device) for b in state["backward"]]
        self._count()

    # the methods

    def _is_update(self, step: int) -> bool:
        """Whether the masks change after step ``step``: every dT steps (topkast), every dT steps before
        ``sparse_end`` (rigl), every dT steps from ``sparse_begin`` and once more at ``sparse_end`` (gmp,
        which then reaches its final sparsity whatever dT)."""
        every, end = self.cfg.sparse_update_every, self.cfg.sparse_end * self.steps
        if self.cfg.sparse_method == "topkast":
            return step % every == 0
        if self.cfg.sparse_method == "rigl":
            return step % every == 0 and 0 < step < end
        begin = self.cfg.sparse_begin * self.steps
        return (step % every == 0 and begin <= step < end) or step == math.ceil(end)

    def _choose_topkast_sets(self) -> None:
        self.masks = [top_mask(t.abs(), kept(t.numel(), d)) for t, d in zip(self.theta, self.densities)]
        self.backward = [top_mask(t.abs(), kept(t.numel(), d)) for t, d in zip(self.theta, self.backward_densities)]

    def _rigl_update(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        end = self.cfg.sparse_end * self.steps
        fraction = self.cfg.sparse_update_fraction / 2 * (1 + math.cos(math.pi * step / end))
        for i, (w, m, g) in enumerate(zip(self.weights, self.masks, self._grads)):
            active = int(m.sum())
            k = min(round(fraction * active), w.numel() - active)
            if g is None or k == 0:
                continue
            self.masks[i], grown = drop_and_grow(w, m, g, k)
            w.masked_fill_(grown, 0)
            _zero_optimizer_state(optimizer, w, grown | ~self.masks[i])
        self._grads = []

    def _prune(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        begin, end = self.cfg.sparse_begin * self.steps, self.cfg.sparse_end * self.steps
        target = gmp_sparsity(step, self.cfg.sparsity, begin, end)
        scores = [torch.where(m, w.abs(), -1.0) for w, m in zip(self.weights, self.masks)]
        if self.cfg.sparse_distribution == "global":
            flat = torch.cat([s.flatten() for s in scores])
            keep = top_mask(flat, kept(flat.numel(), 1.0 - target)).split([s.numel() for s in scores])
            new = [k.view_as(s) for k, s in zip(keep, scores)]
        else:  # each layer to its own final sparsity on the same schedule
            layer_targets = [(1.0 - d) * target / self.cfg.sparsity for d in self.densities]
            new = [top_mask(s, kept(s.numel(), 1.0 - t)) for s, t in zip(scores, layer_targets)]
        for w, old, m in zip(self.weights, self.masks, new):
            _zero_optimizer_state(optimizer, w, old & ~m)
        self.masks = new
