"""Online feature normalisation (MeshGraphNets' ``Normalizer``): statistics accumulated from the data the
model sees during its first training steps, frozen after ``max_accumulations`` batches, stored in the
checkpoint with the weights."""
from __future__ import annotations

import torch
from torch import nn


class OnlineNormaliser(nn.Module):
    """``forward(x [..., F]) -> (x - mean) / std``, accumulating ``mean``/``std`` over the rows it sees while
    training (until ``max_accumulations`` calls); ``inverse`` maps back. ``std`` is at least ``eps``."""

    def __init__(self, size: int, max_accumulations: int = 1_000_000, eps: float = 1e-8) -> None:
        super().__init__()
        self.max_accumulations, self.eps = max_accumulations, eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("total", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("total_squares", torch.zeros(size, dtype=torch.float64))

    def forward(self, x: torch.Tensor, accumulate: bool = True) -> torch.Tensor:
        if accumulate and self.training and self.calls < self.max_accumulations:
            rows = x.detach().reshape(-1, x.shape[-1]).double()
            self.count += rows.shape[0]
            self.total += rows.sum(0)
            self.total_squares += (rows ** 2).sum(0)
            self.calls += 1
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    @property
    def mean(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()

    @property
    def std(self) -> torch.Tensor:
        count = self.count.clamp(min=1)
        var = (self.total_squares / count - (self.total / count) ** 2).clamp(min=0)
        return var.sqrt().clamp(min=self.eps).float()
