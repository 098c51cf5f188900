import math

import pytest
import torch

from generative.schedules import VPSchedule, betas


def test_named_schedules_match_their_definitions():
    lin = betas("linear", 1000)
    assert lin[0].item() == pytest.approx(1e-4) and lin[-1].item() == pytest.approx(0.02)
    sl = betas("scaled_linear", 1000)
    assert sl[0].item() == pytest.approx(0.00085) and sl[-1].item() == pytest.approx(0.012)
    cos = VPSchedule.named("cosine", 1000)
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    unclipped = cos.betas < 0.999
    assert torch.allclose(cos.alphas_cumprod[unclipped], f[unclipped], rtol=1e-10)
    with pytest.raises(ValueError, match="unknown beta schedule"):
        betas("sigmoid")


def test_forward_process_matches_its_closed_form():
    schedule = VPSchedule.named("linear", 200)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((40000, 1), 1.5, dtype=torch.float64)
    x = x0.clone()
    for beta in schedule.betas:  # q(x_t | x_{t-1}) = N(sqrt(1 - beta) x_{t-1}, beta)
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=g, dtype=torch.float64)
    alpha, sigma = schedule.alpha_sigma(torch.tensor([199]), x0[:1])
    assert x.mean().item() == pytest.approx((alpha * 1.5).item(), abs=0.02)
    assert x.var().item() == pytest.approx((sigma ** 2).item(), rel=0.03)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.full((40000,), 199)
    assert torch.allclose(schedule.add_noise(x0, noise, t), alpha * x0 + sigma * noise)


def test_a_schedule_from_noise_levels_has_exactly_those_levels():
    sigmas = torch.tensor([1e-3, 1e-2, 1e-1], dtype=torch.float64)
    schedule = VPSchedule.from_sigmas(sigmas)
    alpha, sigma = schedule.alpha_sigma(torch.arange(3), sigmas)
    assert torch.allclose(sigma, sigmas, rtol=1e-12)
    assert torch.allclose(alpha ** 2 + sigma ** 2, torch.ones(3, dtype=torch.float64))
    for bad in ([1e-2, 1e-3], [0.0, 0.5], [0.5, 1.0]):
        with pytest.raises(ValueError, match="increasing"):
            VPSchedule.from_sigmas(torch.tensor(bad))


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_every_prediction_type_recovers_x0_and_noise(prediction):
    schedule = VPSchedule.named("cosine", 1000)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(8, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(8, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (8,), generator=g)
    x_t = schedule.add_noise(x0, noise, t)
    output = {"epsilon": noise, "sample": x0, "v_prediction": schedule.velocity(x0, noise, t)}[prediction]
    x0_hat, eps_hat = schedule.split(output, x_t, t, prediction)
    assert torch.allclose(x0_hat, x0) and torch.allclose(eps_hat, noise)
