"""Flow matching against exact answers: the marginal velocity of a Gaussian target and of a point mass."""
import pytest
import torch

from generative.flow_matching import FlowSampler, flow_matching_loss, sample_times

MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
STD = torch.tensor([0.5, 1.5], dtype=torch.float64)


def gaussian_velocity(x, t):
    """E[x1 - x0 | x_t = x] on straight paths from N(0, I) to N(MEAN, STD^2):
    ``mu + (x - t mu) (t s^2 - (1 - t)) / ((1 - t)^2 + t^2 s^2)``."""
    t = t.view(-1, 1)
    return MEAN + (x - t * MEAN) * (t * STD ** 2 - (1 - t)) / ((1 - t) ** 2 + t ** 2 * STD ** 2)


def transport_error(method, steps, z):
    """Largest deviation of the sampler's image of noise ``z`` from the exact ODE map ``mu + s z``."""
    sampler = FlowSampler(method, steps)
    x = sampler.sample(gaussian_velocity, z.shape, noise=z.clone())
    return float((x - (MEAN + STD * z)).abs().max())


def test_the_exact_gaussian_velocity_transports_noise_to_the_gaussian_at_the_solvers_order():
    z = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    heun = [transport_error("heun", n, z) for n in (16, 32, 64)]
    euler = [transport_error("euler", n, z) for n in (16, 32, 64)]
    assert heun[-1] < 1e-3 and euler[-1] < 0.15  # worst of 4000 points, |z| up to ~4
    assert 3.5 < heun[1] / heun[2] < 4.5 and 3.5 < heun[0] / heun[1] < 5.0  # second order
    assert 1.6 < euler[1] / euler[2] < 2.4                                  # first order
    samples = FlowSampler("heun", 32).sample(gaussian_velocity, (20000, 2), torch.Generator().manual_seed(1),
                                              torch.float64)
    assert torch.allclose(samples.mean(0), MEAN, atol=0.03) and torch.allclose(samples.std(0), STD, rtol=0.03)


def test_paths_to_a_point_mass_are_straight_and_one_euler_step_is_exact():
    target = torch.tensor([3.0, -1.0], dtype=torch.float64)
    velocity = lambda x, t: (target - x) / (1 - t.view(-1, 1))  # noqa: E731  exact field of a point mass
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for method, steps in (("euler", 1), ("euler", 7)):  # (Heun would call the field at t = 1, where it is 0/0)
        sampler = FlowSampler(method, steps)
        assert torch.allclose(sampler.sample(velocity, z.shape, noise=z.clone()), target.expand_as(z), atol=1e-12)
    sampler = FlowSampler("euler", 4)  # every intermediate state lies on the straight line from z to the target
    sampler.set_timesteps(4)
    x = z.clone()
    for i, t in enumerate(sampler.timesteps):
        x = sampler.step(velocity(x, t.expand(len(x))), t, x)
        s = (i + 1) / 4
        assert torch.allclose(x, (1 - s) * z + s * target, atol=1e-12)


def test_the_loss_vanishes_for_a_point_masss_exact_field_and_is_smallest_at_the_exact_gaussian_field():
    target = torch.tensor([3.0, -1.0], dtype=torch.float64)
    x1 = target.expand(512, 2)
    exact = lambda x, t: (target - x) / (1 - t.view(-1, 1))  # noqa: E731
    assert float(flow_matching_loss(exact, x1, torch.Generator().manual_seed(3))) < 1e-20
    data = MEAN + STD * torch.randn(200_000, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    losses = [float(flow_matching_loss(lambda x, t, d=d: gaussian_velocity(x, t) + d, data,
                                       torch.Generator().manual_seed(5))) for d in (0.0, 0.1, -0.1)]
    assert losses[0] < min(losses[1:])


def test_zero_weights_leave_elements_out_of_the_loss():
    x1 = torch.zeros(64, 3, dtype=torch.float64)
    weight = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    right_where_weighted = lambda x, t: torch.cat([-x[:, :2] / (1 - t.view(-1, 1)), x[:, 2:] + 1e6], 1)  # noqa: E731
    assert float(flow_matching_loss(right_where_weighted, x1, torch.Generator().manual_seed(6), weight=weight)) < 1e-20


def test_times_and_arguments():
    g = torch.Generator().manual_seed(7)
    for kind in ("uniform", "logit_normal"):
        t = sample_times(10_000, kind, g)
        assert (t > 0).all() and (t < 1).all() and abs(float(t.mean()) - 0.5) < 0.02
    assert float(sample_times(10_000, "logit_normal", g).std()) < float(sample_times(10_000, "uniform", g).std())
    with pytest.raises(ValueError, match="uniform or logit_normal"):
        sample_times(3, "beta")
    with pytest.raises(ValueError, match="euler or heun"):
        FlowSampler("rk4")
    with pytest.raises(ValueError, match="at least 1"):
        FlowSampler("heun", 0)
    assert FlowSampler("heun", 8).evaluations == 16 and FlowSampler("euler", 8).evaluations == 8
