"""Training objective of discrete VP diffusion and a sample-quality distance for tests and evaluation."""
from __future__ import annotations

import torch

from generative.schedules import Prediction, VPSchedule


def denoising_loss(model, schedule: VPSchedule, x0: torch.Tensor, prediction: Prediction = "epsilon",
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``E_t,eps |model(x_t, t) - target|^2`` with t uniform over the training steps (Ho et al. 2020);
    the target is ``eps``, ``x0`` or ``v`` according to ``prediction``."""
    t = torch.randint(0, schedule.num_train_timesteps, (x0.shape[0],), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    x_t = schedule.add_noise(x0, noise, t)
    target = {"epsilon": noise, "sample": x0, "v_prediction": schedule.velocity(x0, noise, t)}[prediction]
    return torch.nn.functional.mse_loss(model(x_t, t), target)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 256,
                       generator: torch.Generator | None = None) -> float:
    """Sliced 1-Wasserstein distance between equal-size samples ``[N, D]``: the mean over random unit
    directions of the 1-D Wasserstein distance of the projections (sorted differences)."""
    if a.shape != b.shape:
        raise ValueError(f"samples must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    directions = torch.randn(a.shape[1], projections, generator=generator, dtype=a.dtype)
    directions = directions / directions.norm(dim=0, keepdim=True)
    pa, pb = (a @ directions).sort(dim=0).values, (b @ directions).sort(dim=0).values
    return float((pa - pb).abs().mean())
