"""An exponential moving average of a model's weights (Polyak averaging), the weights generative models are
evaluated and sampled with (DDPM, EDM, CaloDiffusion, CaloDREAM all keep one).

After each optimiser step ``shadow = d shadow + (1 - d) weights`` with ``d = min(decay, (1 + n) / (10 + n))``
at the n-th update (TensorFlow's warm-up of ``ExponentialMovingAverage``: early on the average follows the
weights instead of remembering their initialisation). Buffers (normaliser statistics, fitted transforms) are
copied, not averaged: they are the model's current state, not weights.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """The averaged copy ``shadow`` of ``model`` (eval mode, no gradients).

    Args:
        model: the trained module (unwrapped from DDP).
        decay: the long-run decay d in (0, 1), e.g. 0.999 (an average over ~1,000 steps).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s weights and take its buffers."""
        weight = 1.0 - self.current_decay()
        for mine, theirs in zip(self.shadow.parameters(), model.parameters()):
            mine.lerp_(theirs.detach(), weight)
        for mine, theirs in zip(self.shadow.buffers(), model.buffers()):
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"weights": self.shadow.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.shadow.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
