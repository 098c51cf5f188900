"""Optimisers beyond ``torch.optim``: Ranger (RAdam inside Lookahead), weaver-core's default for taggers.

Lookahead (Zhang et al. 2019) keeps a slow copy of the weights; every ``k`` steps of the inner optimiser the
slow weights move ``alpha`` of the way to the fast ones and the fast weights restart from them. Its state
dict holds the inner optimiser's, the slow weights and the step counter, so a resumed run continues exactly.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

OPTIMIZERS = ("adamw", "ranger")


class Lookahead(torch.optim.Optimizer):
    """Lookahead around ``inner``; shares its parameter groups, so learning-rate schedulers act on both.

    Args:
        inner: the fast optimiser.
        alpha: the slow weights' step towards the fast ones.
        k: inner steps between slow updates.
    """

    def __init__(self, inner: torch.optim.Optimizer, alpha: float = 0.5, k: int = 6) -> None:
        if not 0.0 < alpha <= 1.0 or k < 1:
            raise ValueError(f"Lookahead needs 0 < alpha <= 1 and k >= 1, got alpha={alpha}, k={k}")
        super().__init__(inner.param_groups, inner.defaults)
        self.param_groups = inner.param_groups
        self.inner, self.alpha, self.k, self.counter = inner, alpha, k, 0
        for p in self._params():
            self.state[p]["slow"] = p.detach().clone()

    def _params(self) -> list[nn.Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure=None):
        loss = self.inner.step(closure)
        self.counter += 1
        if self.counter % self.k == 0:
            for p in self._params():
                slow = self.state[p]["slow"]
                slow.add_(p - slow, alpha=self.alpha)
                p.copy_(slow)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "slow": [self.state[p]["slow"] for p in self._params()],
                "counter": self.counter}

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self.param_groups = self.inner.param_groups  # loading replaced the inner optimiser's groups
        for p, slow in zip(self._params(), state["slow"], strict=True):
            self.state[p]["slow"].copy_(slow)
        self.counter = int(state["counter"])


def make_optimizer(name: str, parameters: Iterable[nn.Parameter], lr: float, betas: tuple[float, float],
                   weight_decay: float) -> torch.optim.Optimizer:
    """``adamw`` (AdamW) or ``ranger`` (RAdam with eps 1e-5 inside Lookahead(alpha 0.5, k 6), as weaver-core).

    Args:
        name: one of :data:`OPTIMIZERS`.
        parameters: what to train.
        lr: initial learning rate; betas, weight_decay: Adam's (decoupled decay in both).
    """
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "ranger":
        return Lookahead(torch.optim.RAdam(parameters, lr=lr, betas=betas, eps=1e-5, weight_decay=weight_decay,
                                           decoupled_weight_decay=True))
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
