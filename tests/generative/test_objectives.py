import math

import pytest
import torch
from torch import nn

from generative.objectives import denoising_loss, sliced_wasserstein
from generative.samplers import DDIMSampler
from generative.schedules import VPSchedule


def mixture(n, generator):
    """Four well-separated Gaussians on the corners of a square."""
    centres = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    pick = torch.randint(0, 4, (n,), generator=generator)
    return centres[pick] + 0.1 * torch.randn(n, 2, generator=generator)


class TinyEpsilon(nn.Module):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.net = nn.Sequential(nn.Linear(4, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 2))

    def forward(self, x, t):
        phase = 2 * math.pi * t.float()[:, None] / self.steps
        return self.net(torch.cat([x, phase.sin(), phase.cos()], dim=1))


def test_sliced_wasserstein_is_zero_for_equal_samples_and_sees_a_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 2, generator=g)
    assert sliced_wasserstein(a, a.clone()) == 0.0
    shift = sliced_wasserstein(a, a + torch.tensor([1.0, 0.0]), projections=2000, generator=g)
    assert shift == pytest.approx(2 / math.pi, rel=0.05)  # mean |cos| of a random direction in 2-D


@pytest.mark.slow
def test_a_tiny_model_learns_a_mixture_of_gaussians():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    schedule = VPSchedule.named("cosine", 200)
    model = TinyEpsilon(200)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(3000):
        opt.zero_grad()
        denoising_loss(model, schedule, mixture(256, g), generator=g).backward()
        opt.step()
    sampler = DDIMSampler(schedule, clip_sample=2.0)  # without clipping: distance 2.1 (alpha_T = 2.5e-4)
    sampler.set_timesteps(50)
    samples = sampler.sample(model, (2000, 2), generator=g)
    reference = mixture(2000, g)
    untrained = torch.randn(2000, 2, generator=g)
    distance = sliced_wasserstein(samples, reference, generator=g)
    assert distance < 0.1 < sliced_wasserstein(untrained, reference, generator=g)
