"""Variance-preserving noise schedules and the forward process ``q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I)``.

``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)``, ``abar_t = prod_{s<=t} (1 - beta_s)``, with
t = 0 .. T-1 indexing the noised states (diffusers' convention). Networks may predict the noise
``eps``, the clean sample ``x0`` or the velocity ``v = alpha_t eps - sigma_t x0`` (Salimans & Ho 2022);
:meth:`VPSchedule.split` turns any of them into ``(x0, eps)``.
"""
from __future__ import annotations

import math
from typing import Literal

import torch

Prediction = Literal["epsilon", "sample", "v_prediction"]


def betas(kind: str, steps: int = 1000) -> torch.Tensor:
    """``beta_t [steps]`` (float64) of a named schedule.

    linear: 1e-4 .. 0.02 (Ho et al. 2020); scaled_linear: linear in sqrt(beta) from 0.00085 to 0.012
    (latent diffusion); cosine: ``abar(t) = cos^2((t/T + s) / (1 + s) pi/2)``, s = 0.008, beta <= 0.999
    (Nichol & Dhariwal 2021).
    """
    if kind == "linear":
        return torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, steps, dtype=torch.float64) ** 2
    if kind == "cosine":
        s = 0.008
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {kind!r}; use linear, scaled_linear or cosine")


def _per_sample(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[t]`` shaped to broadcast against a batch ``like [B, ...]``."""
    out = values.to(like.device)[t].to(like.dtype)
    return out.view(out.shape + (1,) * (like.dim() - out.dim()))


class VPSchedule:
    """A discrete variance-preserving schedule of ``len(betas)`` training steps."""

    def __init__(self, beta: torch.Tensor) -> None:
        if beta.dim() != 1 or not ((beta > 0) & (beta < 1)).all():
            raise ValueError("betas must be a 1-D tensor with values in (0, 1)")
        self.betas = beta.double()
        self.alphas_cumprod = torch.cumprod(1 - self.betas, dim=0)

    @classmethod
    def named(cls, kind: str, steps: int = 1000) -> "VPSchedule":
        return cls(betas(kind, steps))

    @classmethod
    def from_sigmas(cls, sigmas: torch.Tensor) -> "VPSchedule":
        """The schedule whose noise level at step t is ``sigmas[t]`` (increasing, in (0, 1)):
        ``abar_t = 1 - sigma_t^2``, so ``beta_t = 1 - abar_t / abar_{t-1}``."""
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
        if sigmas.dim() != 1 or not ((sigmas > 0) & (sigmas < 1)).all() or not (sigmas.diff() > 0).all():
            raise ValueError("sigmas must be a 1-D increasing tensor with values in (0, 1)")
        abar = 1 - sigmas ** 2
        return cls(1 - abar / torch.cat([abar.new_ones(1), abar[:-1]]))

    @property
    def num_train_timesteps(self) -> int:
        return self.betas.shape[0]

    def alpha_sigma(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``alpha_t``, ``sigma_t`` broadcastable against ``like``."""
        abar = _per_sample(self.alphas_cumprod, t, like)
        return abar.sqrt(), (1 - abar).sqrt()

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A sample of ``q(x_t | x_0)``: ``alpha_t x0 + sigma_t noise``."""
        alpha, sigma = self.alpha_sigma(t, x0)
        return alpha * x0 + sigma * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The v-prediction target ``alpha_t noise - sigma_t x0``."""
        alpha, sigma = self.alpha_sigma(t, x0)
        return alpha * noise - sigma * x0

    def split(self, model_output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
              prediction: Prediction = "epsilon") -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, eps)`` implied by a network output of the given ``prediction`` type at ``x_t``."""
        alpha, sigma = self.alpha_sigma(t, x_t)
        if prediction == "epsilon":
            eps = model_output
            return (x_t - sigma * eps) / alpha, eps
        if prediction == "sample":
            x0 = model_output
            return x0, (x_t - alpha * x0) / sigma
        if prediction == "v_prediction":
            return alpha * x_t - sigma * model_output, sigma * x_t + alpha * model_output
        raise ValueError(f"prediction must be epsilon, sample or v_prediction, got {prediction!r}")
