"""Conditional flow matching on straight (rectified-flow / optimal-transport) paths (Lipman et al. 2023,
arXiv:2210.02747; Liu et al. 2023, arXiv:2209.03003), and its ODE samplers.

Time runs from noise to data: ``x_t = (1 - t) x_0 + t x_1`` with ``x_0 ~ N(0, I)`` and ``x_1`` a data
sample, so the conditional velocity is ``x_1 - x_0`` and a network ``v(x_t, t)`` regressed on it learns the
marginal velocity field, whose ODE ``dx/dt = v(x, t)`` carries N(0, I) at t = 0 to the data at t = 1.
The samplers have the diffusion samplers' interface (``set_timesteps``, ``step``, ``sample``); their
``timesteps`` are the times in [0, 1) at which the network is called (Heun: each step's start, then its end).
"""
from __future__ import annotations

from typing import Literal

import torch

from generative.samplers import Model

TimeDistribution = Literal["uniform", "logit_normal"]


def sample_times(n: int, distribution: TimeDistribution = "uniform", generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` training times in (0, 1): uniform, or logit-normal (sigmoid of N(0, 1): more weight in the
    middle of the path, Esser et al. 2024)."""
    if distribution == "uniform":
        return torch.rand(n, generator=generator, device=device, dtype=dtype)
    if distribution == "logit_normal":
        return torch.sigmoid(torch.randn(n, generator=generator, device=device, dtype=dtype))
    raise ValueError(f"time distribution must be uniform or logit_normal, got {distribution!r}")


def straight_path(x1: torch.Tensor, generator: torch.Generator | None = None, times: TimeDistribution = "uniform"
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training point on the straight path from fresh noise ``x_0 ~ N(0, I)`` to data ``x1 [B, ...]``:
    ``(x_t, t [B], velocity target x1 - x_0)``, t drawn from ``times`` (:func:`sample_times`)."""
    t = sample_times(x1.shape[0], times, generator, x1.device, x1.dtype)
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    tb = t.view(-1, *([1] * (x1.dim() - 1)))
    return (1 - tb) * x0 + tb * x1, t, x1 - x0


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error; with ``weight`` (broadcastable, 0 leaves an element out) the weighted mean."""
    error = (prediction - target) ** 2
    if weight is None:
        return error.mean()
    weight = weight.expand_as(error).to(error.dtype)
    return (error * weight).sum() / weight.sum().clamp(min=1)


def flow_matching_loss(model: Model, x1: torch.Tensor, generator: torch.Generator | None = None,
                       times: TimeDistribution = "uniform", weight: torch.Tensor | None = None) -> torch.Tensor:
    """``E_t,x0 |model(x_t, t) - (x_1 - x_0)|^2`` on the straight path from ``x_0 ~ N(0, I)`` to ``x1``.

    Args:
        model: ``model(x_t [B, ...], t [B]) -> velocity [B, ...]``.
        x1: a batch of data ``[B, ...]``.
        generator: for the noise and the times.
        times: the distribution of t (:func:`sample_times`).
        weight: optional weights broadcastable to ``x1`` (0 leaves an element out of the loss, e.g. a
            feature that is undefined for this sample); the loss is then the weighted mean.
    """
    x_t, t, target = straight_path(x1, generator, times)
    return weighted_mse(model(x_t, t), target, weight)


class FlowSampler:
    """Integrates ``dx/dt = v(x, t)`` from t = 0 (Gaussian noise) to t = 1 on ``n`` equal steps, with
    Euler's method (``n`` network calls) or Heun's (trapezoidal, ``2 n`` calls, second order).

    Args:
        method: ``euler`` or ``heun``.
        steps: number of steps (``set_timesteps`` changes it).
    """

    init_noise_sigma = 1.0

    def __init__(self, method: Literal["euler", "heun"] = "heun", steps: int = 16) -> None:
        if method not in ("euler", "heun"):
            raise ValueError(f"method must be euler or heun, got {method!r}")
        self.method = method
        self.set_timesteps(steps)

    def set_timesteps(self, n: int) -> None:
        """``n`` steps: ``timesteps`` are the step starts (Euler), or each start and then its end (Heun)."""
        if n < 1:
            raise ValueError(f"number of sampling steps must be at least 1, got {n}")
        self.grid = torch.linspace(0, 1, n + 1, dtype=torch.float64)
        starts, ends = self.grid[:-1], self.grid[1:]
        self.timesteps = starts if self.method == "euler" else torch.stack([starts, ends], 1).flatten()
        self._i, self._predictor = 0, None

    @property
    def evaluations(self) -> int:
        """Network calls per sample."""
        return len(self.timesteps)

    def step(self, model_output: torch.Tensor, t: float | torch.Tensor, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One network call's update: the Euler step from ``grid[i]`` to ``grid[i + 1]``, or for Heun, at the
        step's end, the trapezoidal correction of that step. Deterministic: ``generator`` is unused."""
        if self._predictor is not None:  # Heun's corrector: average the slopes at both ends
            x_i, v_i, h = self._predictor
            self._predictor = None
            return x_i + h * 0.5 * (v_i + model_output)
        h = float(self.grid[self._i + 1] - self.grid[self._i])
        self._i += 1
        if self.method == "heun":
            self._predictor = (x, model_output, h)
        return x + h * model_output

    @torch.no_grad()
    def sample(self, model: Model, shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """Samples ``shape`` from a velocity field ``model(x, t [B]) -> [B, ...]``, starting from ``noise``
        (default: fresh N(0, I))."""
        self._i, self._predictor = 0, None
        x = torch.randn(shape, generator=generator, dtype=dtype, device=device) if noise is None else noise
        for t in self.timesteps:
            x = self.step(model(x, torch.full((shape[0],), float(t), dtype=x.dtype, device=x.device)), t, x)
        return x
