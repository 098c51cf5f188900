"""With the exact score of a Gaussian, every sampler must return that Gaussian."""
import pytest
import torch

from generative.samplers import (DDIMSampler, DDPMSampler, EDMSampler, classifier_free_guidance, edm_sampler_for,
                                 vp_denoiser)
from generative.schedules import VPSchedule

MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
STD = torch.tensor([0.5, 1.5], dtype=torch.float64)


def exact_epsilon(schedule):
    """E[eps | x_t] for data N(MEAN, STD^2): sigma (x_t - alpha mu) / (alpha^2 s^2 + sigma^2)."""
    def model(x, t):
        alpha, sigma = schedule.alpha_sigma(t, x)
        return sigma * (x - alpha * MEAN) / (alpha ** 2 * STD ** 2 + sigma ** 2)
    return model


def exact_denoiser(x, sigma):
    """E[x0 | x0 + sigma n] for data N(MEAN, STD^2)."""
    return MEAN + STD ** 2 / (STD ** 2 + sigma ** 2) * (x - MEAN)


def assert_gaussian(samples, mean=MEAN, std=STD):
    assert torch.allclose(samples.mean(0), mean, atol=0.03)  # 20000 samples: standard error 0.011
    assert torch.allclose(samples.std(0), std, rtol=0.03)


def assert_edm_image_of_its_prior(samples, sigma_max):
    """The probability-flow ODE maps N(0, sigma_max^2) to mu + (x_T - mu) s / sqrt(s^2 + sigma_max^2) exactly."""
    shrink = STD / (STD ** 2 + sigma_max ** 2).sqrt()
    assert_gaussian(samples, mean=MEAN * (1 - shrink), std=sigma_max * shrink)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddpm_with_the_exact_score_returns_the_gaussian(kind):
    schedule = VPSchedule.named(kind, 1000)
    sampler = DDPMSampler(schedule)
    sampler.set_timesteps(250)
    samples = sampler.sample(exact_epsilon(schedule), (20000, 2), torch.Generator().manual_seed(0), torch.float64)
    assert_gaussian(samples)


def test_ddim_is_deterministic_and_exact_for_a_gaussian():
    schedule = VPSchedule.named("cosine", 1000)
    sampler = DDIMSampler(schedule, eta=0.0)
    sampler.set_timesteps(100)
    model = exact_epsilon(schedule)
    a = sampler.sample(model, (20000, 2), torch.Generator().manual_seed(1), torch.float64)
    b = sampler.sample(model, (20000, 2), torch.Generator().manual_seed(1), torch.float64)
    assert torch.equal(a, b)
    assert_gaussian(a)
    stochastic = DDIMSampler(schedule, eta=1.0)
    stochastic.set_timesteps(500)
    assert_gaussian(stochastic.sample(model, (20000, 2), torch.Generator().manual_seed(2), torch.float64))


def test_edm_heun_with_the_exact_denoiser_returns_the_gaussian():
    sampler = EDMSampler()
    sampler.set_timesteps(32)
    calls = []
    samples = sampler.sample(lambda x, s: calls.append(s) or exact_denoiser(x, s), (20000, 2),
                             generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert len(calls) == len(sampler.timesteps) == 2 * 32 - 1
    assert_edm_image_of_its_prior(samples, sampler.sigma_max)
    sig = sampler.sigmas(18)
    assert sig[0].item() == pytest.approx(80.0) and sig[-2].item() == pytest.approx(0.002) and sig[-1] == 0


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_a_vp_network_run_by_the_edm_sampler_is_the_exact_denoiser(prediction):
    schedule = VPSchedule.named("cosine", 400)

    def model(x_t, t):  # the exact network, of each prediction type, at fractional timesteps
        table = schedule.alphas_cumprod
        lo, frac = t.floor().long().clamp(max=len(table) - 2), t - t.floor()
        abar = (table[lo] ** (1 - frac) * table[lo + 1] ** frac).view(-1, 1)
        alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
        eps = sigma * (x_t - alpha * MEAN) / (alpha ** 2 * STD ** 2 + sigma ** 2)
        x0 = (x_t - sigma * eps) / alpha
        return {"epsilon": eps, "sample": x0, "v_prediction": alpha * eps - sigma * x0}[prediction]

    denoiser = vp_denoiser(model, schedule, prediction)
    x = torch.randn(1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 3
    for sigma in (0.05, 1.0, 20.0):
        s = torch.tensor(sigma, dtype=torch.float64)
        assert torch.allclose(denoiser(x, s), exact_denoiser(x, s), atol=2e-3 * (1 + sigma))
    sampler = edm_sampler_for(schedule)
    sampler.set_timesteps(40)
    samples = sampler.sample(denoiser, (20000, 2), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert_edm_image_of_its_prior(samples, sampler.sigma_max)


def test_edm_preconditioning_reproduces_an_ideal_network():
    """If F is the ideal preconditioned target, D(x, sigma) is the exact denoiser."""
    sampler = EDMSampler()
    sigma = torch.tensor(3.0, dtype=torch.float64)
    c_skip, c_out, c_in, _ = sampler.preconditioning(sigma)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def ideal_network(x_in, c_noise):
        return (exact_denoiser(x_in / c_in, sigma) - c_skip * x_in / c_in) / c_out

    assert torch.allclose(sampler.denoiser(ideal_network)(x, sigma), exact_denoiser(x, sigma))


def test_guidance_interpolates_and_extrapolates():
    cond, uncond = torch.tensor([2.0]), torch.tensor([1.0])
    assert classifier_free_guidance(cond, uncond, 1.0).item() == 2.0
    assert classifier_free_guidance(cond, uncond, 0.0).item() == 1.0
    assert classifier_free_guidance(cond, uncond, 3.0).item() == 4.0


def test_bad_step_count_is_rejected():
    with pytest.raises(ValueError, match="sampling steps"):
        DDPMSampler(VPSchedule.named("linear", 10)).set_timesteps(11)


def test_edm_step_interface_is_heuns_method():
    """The step-by-step sampler equals Heun's method written out (Karras et al. 2022, Algorithm 1)."""
    sampler = EDMSampler(sigma_max=20.0)
    sampler.set_timesteps(6)
    ours = sampler.sample(exact_denoiser, (500, 2), torch.Generator().manual_seed(6), torch.float64)
    sig = sampler.sigmas(6)
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * sig[0]
    for s, s_next in zip(sig[:-1], sig[1:]):
        d = (x - exact_denoiser(x, s)) / s
        x_next = x + (s_next - s) * d
        if s_next > 0:
            x_next = x + (s_next - s) * 0.5 * (d + (x_next - exact_denoiser(x_next, s_next)) / s_next)
        x = x_next
    assert torch.allclose(ours, x, atol=1e-12)


@pytest.mark.parametrize("make", [lambda s: DDPMSampler(s), lambda s: DDIMSampler(s), lambda s: edm_sampler_for(s)])
def test_every_sampler_has_one_interface(make):
    """``sample`` is exactly the loop over ``timesteps`` of ``step`` from noise times ``init_noise_sigma``."""
    schedule = VPSchedule.named("cosine", 100)
    sampler = make(schedule)
    edm = isinstance(sampler, EDMSampler)
    model = exact_denoiser if edm else exact_epsilon(schedule)
    sampler.set_timesteps(10)
    ours = sampler.sample(model, (64, 2), torch.Generator().manual_seed(7), torch.float64)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(64, 2, generator=g, dtype=torch.float64) * sampler.init_noise_sigma
    sampler.set_timesteps(10)
    for t in sampler.timesteps:
        x = sampler.step(model(x, t if edm else t.expand(64)), t if edm else int(t), x, g)
    assert torch.allclose(ours, x)
