import numpy as np
import pytest
import torch

from training.adversarial import AdversarialConfig, AdversarialTrainer, GanLosses
from weather import train
from weather.baselines import extrapolate
from weather.unet import NowcastUNet
from weather.dgmr import DGMR, DGMRConfig


def _model(**changes) -> DGMR:
    torch.manual_seed(0)
    return DGMR(DGMRConfig(base=2, temporal_crop=32, leads=5, spatial_frames=3, samples=2, **changes))


@pytest.mark.parametrize("size,every", [((32, 32), False), ((64, 96), False), ((64, 96), True)])
def test_generator_shapes_follow_the_input(size, every):
    model = _model(latent_every_scale=every).eval()
    inputs = torch.rand(2, 4, *size) * 5
    with torch.no_grad():
        out = model.generator(inputs)
        scores = model.discriminator(torch.cat([inputs, out], 1))
    assert out.shape == (2, 5, *size) and (out >= 0).all()
    assert scores.shape == (2, 2)


def test_latent_draws_make_an_ensemble():
    model = _model(corrects="nothing").eval()  # on extrapolation the untrained members are all extrapolation
    inputs = torch.rand(1, 4, 32, 32) * 5
    with torch.no_grad():
        a = model.generator(inputs, generator=torch.Generator().manual_seed(1))
        b = model.generator(inputs, generator=torch.Generator().manual_seed(1))
        c = model.generator(inputs, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def _latent_reach(model: DGMR) -> float:
    """Spread over 4 latent draws of the output layer's input, relative to its mean magnitude (one input)."""
    seen = []
    model.generator.sampler.out.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    g = torch.Generator().manual_seed(0)
    inputs = torch.rand(1, 4, 32, 32, generator=g) * 5 * (torch.rand(1, 4, 32, 32, generator=g) < 0.3)
    with torch.no_grad():
        for draw in range(4):
            model.generator(inputs, generator=torch.Generator().manual_seed(draw))
    leads = model.cfg.leads                               # one call of the output layer per lead
    features = torch.stack([torch.cat(seen[i * leads:(i + 1) * leads]) for i in range(4)])
    return float(features.std(dim=0).mean() / features.abs().mean())


def test_latent_reaches_the_output_through_every_scale():
    """Each finer scale passes on about a tenth of the latent's effect on the scale below: read by the coarsest
    ConvGRU only, the latent barely moves the output layer's input; read by every scale, it does."""
    coarsest = _latent_reach(_model(corrects="nothing").eval())
    every = _latent_reach(_model(corrects="nothing", latent_every_scale=True).eval())
    assert coarsest < 1e-3 and every > 5e-3 and every > 100 * coarsest


def test_bad_input_size_is_named():
    with pytest.raises(ValueError, match="divisible by 32"):
        _model().generator(torch.rand(1, 4, 40, 32))


def test_grid_cell_regulariser_is_the_published_formula():
    rng = np.random.default_rng(0)
    samples = rng.lognormal(0, 1.5, (3, 2, 4, 8, 8)).astype(np.float32)
    targets = rng.lognormal(0, 1.5, (2, 4, 8, 8)).astype(np.float32)
    valid = np.ones((2, 8, 8), bool)
    expected = np.mean(np.abs(samples.mean(0) - targets) * np.clip(targets, 0, 24))
    ours = train.grid_cell_regulariser(torch.from_numpy(samples), torch.from_numpy(targets),
                                       torch.from_numpy(valid))
    assert float(ours) == pytest.approx(expected, rel=1e-5)
    floored = np.mean(np.abs(samples.mean(0) - targets) * np.clip(targets, 1, 24))
    assert float(train.grid_cell_regulariser(torch.from_numpy(samples), torch.from_numpy(targets),
                                             torch.from_numpy(valid), floor=1.0)) == pytest.approx(floored, rel=1e-5)
    buggy = np.mean(np.abs(samples.mean(0) - targets) * np.maximum(targets + 1, 24))  # the port's weight
    assert float(ours) != pytest.approx(buggy, rel=0.1)
    valid[:, :4] = False  # only the valid half counts
    half = np.mean((np.abs(samples.mean(0) - targets) * np.clip(targets, 0, 24))[..., 4:, :])
    assert float(train.grid_cell_regulariser(torch.from_numpy(samples), torch.from_numpy(targets),
                                             torch.from_numpy(valid))) == pytest.approx(half, rel=1e-5)


@pytest.mark.parametrize("fair", [0.0, 0.95, 1.0])
def test_grid_cell_crps_is_the_almost_fair_crps_of_log_rain_by_brute_force(fair):
    rng = np.random.default_rng(1)
    samples = rng.lognormal(0, 1.5, (5, 2, 3, 8, 8)).astype(np.float32)
    targets = rng.lognormal(0, 1.5, (2, 3, 8, 8)).astype(np.float32)
    valid = np.ones((2, 8, 8), bool)
    valid[:, :2] = False
    x, y = np.log1p(samples), np.log1p(targets)
    distinct = np.mean([np.abs(a - b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j], axis=0)
    every = np.mean([np.abs(a - b) for a in x for b in x], axis=0)      # the empirical distribution's
    crps = np.abs(x - y).mean(0) - (fair * distinct + (1 - fair) * every) / 2
    expected = np.mean((crps * np.clip(targets, 1, 24))[..., 2:, :])
    ours = train.grid_cell_crps(torch.from_numpy(samples), torch.from_numpy(targets), torch.from_numpy(valid), 1.0,
                                fair=fair)
    assert float(ours) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 samples"):
        train.grid_cell_crps(torch.from_numpy(samples[:1]), torch.from_numpy(targets), torch.from_numpy(valid))


@pytest.mark.parametrize("fair,pulled_in", [(1.0, False), (0.95, True)])
def test_only_the_almost_fair_crps_pulls_a_runaway_sample_in(fair, pulled_in):
    """The fair CRPS's gradient on the highest sample is 0 whenever it is above the observation (and on the
    lowest below it), so one sample per cell can run away at no cost (it did, in training); the almost fair
    CRPS pulls both in."""
    samples = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 100.0]).reshape(6, 1, 1, 1, 1).requires_grad_()
    train.grid_cell_crps(samples, torch.full((1, 1, 1, 1), 3.0), torch.ones(1, 1, 1, dtype=torch.bool),
                         fair=fair).backward()
    highest, lowest = float(samples.grad[-1]), float(samples.grad[0])   # descent: > 0 lowers, < 0 raises
    if pulled_in:
        assert highest > 1e-5 and lowest < -1e-5
    else:
        assert abs(highest) < 1e-6 and abs(lowest) < 1e-6


def test_only_the_crps_regulariser_charges_a_collapsed_ensemble():
    """Observations and 6 samples per cell drawn from one skewed rain distribution, against 6 samples that all
    sit on its median: the mean-kernel regulariser prefers the collapsed ensemble (the median minimises the
    absolute error of one forecast), the fair CRPS prefers the spread one (uniform weights: floor 24)."""
    g = torch.Generator().manual_seed(0)
    shape = (4, 6, 32, 32)
    draw = lambda *lead: torch.exp(torch.randn(*lead, *shape, generator=g))  # noqa: E731
    targets, spread = draw(), draw(6)
    collapsed = torch.ones_like(spread)                    # exp(median of the normal) = 1
    valid = torch.ones(4, 32, 32, dtype=torch.bool)
    mean_kernel = [float(train.grid_cell_regulariser(x, targets, valid, 24.0)) for x in (spread, collapsed)]
    crps_kernel = [float(train.grid_cell_crps(x, targets, valid, 24.0)) for x in (spread, collapsed)]
    assert mean_kernel[1] < mean_kernel[0]
    assert crps_kernel[0] < 0.9 * crps_kernel[1]


class _Crops(torch.utils.data.Dataset):
    def __init__(self, n: int = 4) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 9, 32, 32, generator=g) * 4

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"inputs": self.x[i, :4], "targets": self.x[i, 4:], "valid": torch.ones(32, 32, dtype=torch.bool)}


def _params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


@pytest.mark.parametrize("d_steps,regulariser", [(0, "mean"), (2, "mean"), (2, "crps")])
def test_adversarial_step_trains_the_right_part(tmp_path, d_steps, regulariser):
    model = _model(regulariser=regulariser)
    cfg = model.cfg
    config = AdversarialConfig(run_dir=str(tmp_path), steps=1, batch_size=2, lr=1e-3, d_lr=1e-3, betas=(0.0, 0.999),
                               grad_clip=None, d_steps=d_steps, checkpoint_every=1, progress=False)
    losses = GanLosses(lambda g, d, b: train.generator_loss(g, d, b, cfg), train.discriminator_loss, train.dgmr_eval)
    trainer = AdversarialTrainer(model, losses, _Crops(), config)
    g0, d0 = _params(model.generator), _params(model.discriminator)
    metrics = trainer.fit()
    assert not torch.equal(_params(model.generator), g0)
    assert torch.equal(_params(model.discriminator), d0) == (d_steps == 0)
    assert np.isfinite(metrics["grid_cell"])
    saved = torch.load(next((tmp_path / "checkpoints").glob("*.pt")), weights_only=True)
    assert "d_optimizer" in saved


def test_rain_forecast_over_dry_cells_costs_in_the_default_regulariser():
    """With the pseudocode's clip(y, 0, 24) weight, rain over dry cells is free; the default floor charges it."""
    targets = torch.zeros(1, 2, 8, 8)
    wet_everywhere = torch.full((1, 1, 2, 8, 8), 3.0)
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    assert float(train.grid_cell_regulariser(wet_everywhere, targets, valid, floor=0.0)) == 0.0
    floor = train.DGMRConfig().reg_floor
    assert float(train.grid_cell_regulariser(wet_everywhere, targets, valid, floor)) == pytest.approx(3.0 * floor)


def test_untrained_generator_forecasts_near_dry():
    """A generator that starts at 1 mm/h everywhere (softplus floor) lets the discriminators win at once."""
    model = _model(corrects="nothing").eval()
    inputs = torch.rand(2, 4, 64, 64) * 5 * (torch.rand(2, 4, 64, 64) < 0.3)
    with torch.no_grad():
        out = model.generator(inputs)
    assert float((out >= 1.0).float().mean()) < 0.01 and float(out.mean()) < 0.3


def test_untrained_generator_on_extrapolation_is_extrapolation():
    """On the extrapolation the untrained generator forecasts it exactly (every latent draw), its ensemble
    computes it once, and the zero-initialised output layer still learns."""
    model = _model()
    g = torch.Generator().manual_seed(0)
    inputs = torch.rand(1, 4, 32, 32, generator=g) * 8 * (torch.rand(1, 4, 32, 32, generator=g) < 0.4)
    expected = extrapolate(inputs, model.cfg.leads)
    with torch.no_grad():
        members = model.generator.ensemble(inputs, 3, torch.Generator().manual_seed(1))
    torch.testing.assert_close(members, expected.expand(3, -1, -1, -1), rtol=1e-5, atol=1e-5)
    sample = model.generator(inputs, extrapolation=expected)
    (sample - inputs[:, -1:]).square().mean().backward()
    assert model.generator.sampler.out.weight.grad.abs().sum() > 0


def test_generator_has_no_batch_statistics():
    """The sampler runs its blocks once per lead: one set of batch-norm running statistics would serve all 18
    leads (dominated by the late ones), so the generator keeps none."""
    norms = [m for m in _model().generator.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms == []


def _rain_stream(seed: int):
    """Batches of 4 mostly dry 32 x 32 crops (blobs moving one pixel per frame), a new batch per call, with the
    exactly advected last context frame as the extrapolation."""
    g = torch.Generator().manual_seed(seed)

    def batch() -> dict:
        field = torch.nn.functional.interpolate(torch.randn(4, 1, 8, 8, generator=g), size=(48, 48), mode="bicubic")
        frames = torch.stack([field[:, 0, i:i + 32, i:i + 32] for i in range(9)], 1)
        rain = torch.expm1((frames - 0.8).clamp_min(0) * 2)
        return {"inputs": rain[:, :4], "targets": rain[:, 4:], "valid": torch.ones(4, 32, 32, dtype=torch.bool),
                "extrapolation": torch.stack([torch.roll(rain[:, 3], (-k, -k), (-2, -1)) for k in range(1, 6)], 1)}
    return batch


def test_discriminator_keeps_learning():
    """The dead-discriminator failure (hinge loss 0 and a zero gradient from step ~10 on): over a short
    adversarial run at the default learning rates the discriminator's gradient never vanishes."""
    model, batch = _model(), _rain_stream(1)
    d_opt = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.0, 0.999))
    g_opt = torch.optim.Adam(model.generator.parameters(), lr=5e-5, betas=(0.0, 0.999))
    norms = []
    for _ in range(20):
        for _ in range(2):
            d_opt.zero_grad()
            train.discriminator_loss(model.generator, model.discriminator, batch())[0].backward()
            norms.append(float(torch.cat([p.grad.flatten() for p in model.discriminator.parameters()
                                          if p.grad is not None]).norm()))
            d_opt.step()
        g_opt.zero_grad()
        train.generator_loss(model.generator, model.discriminator, batch(), model.cfg)[0].backward()
        g_opt.step()
    assert min(norms) > 0.0


def test_discriminator_head_centres_without_rescaling():
    """DGMR's heads centre the batch (calc_sigma=False): a feature that barely separates real from generated
    gives barely different scores; dividing by the batch's spread would blow it up to +-1."""
    head = _model().discriminator.spatial.head.train()
    features = torch.randn(8, head.linear.in_features, 3, 3)
    weak = 1e-3 * features
    strong_scores, weak_scores = head(features), head(weak)
    spread = lambda s: float(s.std())  # noqa: E731
    assert spread(weak_scores) == pytest.approx(1e-3 * spread(strong_scores), rel=1e-3)


def test_untrained_unet_is_persistence():
    unet = NowcastUNet(context=4, leads=3, channels=(8, 16))
    inputs = torch.rand(2, 4, 32, 32) * 10 * (torch.rand(2, 4, 32, 32) < 0.5)
    out = unet(inputs)
    torch.testing.assert_close(out, inputs[:, -1:].expand(-1, 3, -1, -1), rtol=1e-5, atol=1e-5)
    loss, metrics = train.unet_loss(unet, {"inputs": inputs, "targets": inputs[:, :3],
                                           "valid": torch.ones(2, 32, 32, dtype=torch.bool)})
    loss.backward()
    assert unet.net.head[-1].conv.weight.grad.abs().sum() > 0  # the zero layer still learns


@pytest.mark.parametrize("power", [2, 1])
def test_unet_losses_fit_the_mean_or_the_median_of_log_rain(power):
    """Fitted to many draws of a skewed rain distribution, the squared censored log error is lowest at the
    mean of ``log1p`` rain and the absolute one at its median (where the forecast is wet)."""
    draws = torch.tensor([0.5, 1.0, 2.0, 4.0, 30.0]).repeat(40)[:, None, None, None]  # [B, T=1, 1, 1] mm/h

    class Constant(torch.nn.Module):  # a forecast of one free log value
        def __init__(self) -> None:
            super().__init__()
            self.value = torch.nn.Parameter(torch.zeros(()))

        def log_forecast(self, inputs, extrapolation=None):
            return self.value.expand(inputs.shape[0], 1, 1, 1)

    model = Constant()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = {"inputs": draws, "targets": draws, "valid": torch.ones(len(draws), 1, 1, dtype=torch.bool)}
    for _ in range(600):
        optimizer.zero_grad()
        train.unet_loss(model, batch, power)[0].backward()
        optimizer.step()
    logs = torch.log1p(draws.flatten())
    expected = logs.mean() if power == 2 else logs.median()
    assert float(model.value) == pytest.approx(float(expected), abs=0.03)


def test_untrained_unet_on_extrapolation_is_pysteps_extrapolation():
    """With ``base="extrapolation"`` training starts from pysteps' forecast (a rain band moving east), which
    the U-Net computes itself when a crop does not carry it."""
    unet = NowcastUNet(context=4, leads=3, channels=(8, 16), base="extrapolation")
    rain = torch.zeros(1, 7, 32, 32)
    for t in range(7):
        rain[0, t, 8:20, 4 + 2 * t:10 + 2 * t] = 5.0
    inputs = rain[:, :4]
    expected = extrapolate(inputs, 3)
    assert expected[0, -1, 10:18, 17:21].mean() > 4 > inputs[0, -1, 10:18, 17:21].mean()  # moved east
    torch.testing.assert_close(unet(inputs), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unet(inputs, expected), expected, rtol=1e-5, atol=1e-5)
    loss, _ = train.unet_loss(unet, {"inputs": inputs, "targets": rain[:, 4:], "extrapolation": expected,
                                     "valid": torch.ones(1, 32, 32, dtype=torch.bool)})
    loss.backward()
    assert unet.net.head[-1].conv.weight.grad.abs().sum() > 0
