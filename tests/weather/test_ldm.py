"""The residual latent-diffusion nowcaster: shapes, seeding, the residual wiring and its training data."""
import numpy as np
import pytest
import torch

from weather import ldm, metrics, samples, synthetic
from weather.baselines import Extrapolation, ModelNowcast, extrapolate


def _nowcaster(**changes) -> ldm.LatentNowcaster:
    torch.manual_seed(0)
    cfg = ldm.LatentNowcastConfig(leads=3, autoencoder_channels=(8, 8, 8), dim=16, depth=1, heads=2,
                                  cond_channels=8, unet_channels=(16, 16), sampling_steps=2, **changes)
    return ldm.LatentNowcaster(cfg).eval()


def _rain(*shape: int, seed: int = 0) -> torch.Tensor:
    """Rain rates in mm/h, ~70 % dry, wet pixels 0.1-8 mm/h (the archive's detection limit is 0.1 mm/h)."""
    g = torch.Generator().manual_seed(seed)
    return (0.1 + torch.rand(*shape, generator=g) * 7.9) * (torch.rand(*shape, generator=g) < 0.3)


def test_frames_encode_to_a_quarter_and_decode_to_log_rain():
    model = _nowcaster()
    rain = _rain(2, 3, 32, 48)
    z = ldm.encode_frames(model.autoencoder, rain)
    assert z.shape == (2, 3 * 4, 8, 12)
    assert ldm.decode_log_frames(model.autoencoder, z, (32, 48)).shape == rain.shape


def test_members_are_seeded_and_differ():
    model = _nowcaster()
    context, extrapolation = _rain(1, 4, 32, 32), _rain(1, 3, 32, 32, seed=1)
    a = model.sample(context, extrapolation, 3, torch.Generator().manual_seed(5))
    b = model.sample(context, extrapolation, 3, torch.Generator().manual_seed(5))
    assert a.shape == (3, 3, 32, 32)
    assert not ((a > 0) & (a < 0.1)).any()  # nothing below the radar's detection limit, as in the data
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a[0], a[1])


def test_the_forecast_is_the_first_guess_plus_the_sampled_residual():
    """With the exact velocity field of a zero residual (straight paths to the point mass 0, which Euler
    integrates exactly), every member is the first guess (here an extrapolation) itself: the autoencoder's
    reconstruction error cancels. A residual raises the log rain by the decoder's difference."""
    model = _nowcaster(sampler="euler")
    model.field = lambda cond: (lambda x, t: -x / (1 - t).view(-1, 1, 1, 1))
    context, extrapolation = _rain(1, 4, 32, 32), _rain(1, 3, 32, 32, seed=1)
    members = model.sample(context, extrapolation, 2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(members, extrapolation.expand(2, -1, -1, -1), atol=1e-4, rtol=1e-4)
    shift = torch.randn(1, 12, 8, 8)
    model.field = lambda cond: (lambda x, t: (shift - x) / (1 - t).view(-1, 1, 1, 1))  # paths to the point `shift`
    moved = model.sample(context, extrapolation, 1, torch.Generator().manual_seed(0))
    z_e = ldm.encode_frames(model.autoencoder, extrapolation)
    change = (ldm.decode_log_frames(model.autoencoder, z_e + model.cfg.residual_scale * shift, (32, 32))
              - ldm.decode_log_frames(model.autoencoder, z_e, (32, 32)))
    expected = torch.expm1((torch.log1p(extrapolation) + change).clamp_min(0))
    torch.testing.assert_close(moved, torch.where(expected >= 0.1, expected, 0.0), atol=1e-4, rtol=1e-4)


def test_domain_must_fit_the_patches():
    with pytest.raises(ValueError, match="divisible by 8"):
        _nowcaster().sample(_rain(1, 4, 36, 32), _rain(1, 3, 36, 32), 1)


def test_training_loss_reaches_the_velocity_field_only():
    model = _nowcaster().train()
    assert not model.autoencoder.training  # frozen and in eval mode while the rest trains
    z = [ldm.encode_frames(model.autoencoder, _rain(2, n, 32, 32, seed=n)) for n in (4, 3, 3)]
    model(*z).backward()
    assert all(p.grad is None for p in model.autoencoder.parameters())
    assert model.velocity.head[-1].conv.weight.grad.abs().sum() > 0
    assert model.conditioner.embed.weight.grad.abs().sum() > 0


def test_ensembles_go_through_one_first_guess():
    model = _nowcaster()
    calls = []
    original = model.first_guess
    model.first_guess = lambda context: calls.append(1) or original(context)
    forecast = ModelNowcast(model, "ldm", stochastic=True, batch=2).forecast(_rain(4, 32, 32).numpy(), members=3)
    assert forecast.shape == (3, 3, 32, 32) and len(calls) == 2  # one per batch of members


def test_training_crops_carry_latents_of_context_first_guess_and_future(tmp_path):
    synthetic.generate_radar(tmp_path, seed=0, events=2, frames=26, size=64, progress=False)
    crops = samples.RadarSamples(tmp_path / "train", samples.SamplingConfig(crop=32, leads=3), seed=0)
    model = _nowcaster()
    data = ldm.LatentSamples(crops, model.autoencoder)
    item, raw = data[0], crops[0]
    extrapolation = torch.from_numpy(Extrapolation(3).forecast(raw["inputs"].double().numpy())[0]).float()
    for key, frames in (("context", raw["inputs"]), ("first_guess", extrapolation), ("future", raw["targets"])):
        expected = ldm.encode_frames(model.autoencoder, frames[None])[0]
        torch.testing.assert_close(item[key], expected.detach(), rtol=1e-4, atol=1e-4)
    assert data[0] is item  # computed once


def test_a_unet_first_guess_is_the_frozen_unets_forecast(tmp_path):
    """With a first-guess U-Net the training crops carry the latents of its forecast on extrapolation, the
    ensemble corrects that forecast, and the U-Net does not train."""
    synthetic.generate_radar(tmp_path, seed=0, events=2, frames=26, size=64, progress=False)
    crops = samples.RadarSamples(tmp_path / "train", samples.SamplingConfig(crop=32, leads=3), seed=0)
    model = _nowcaster(first_guess_unet=(8, 8))
    torch.nn.init.normal_(model.deterministic.net.head[-1].conv.weight, std=0.1)  # a U-Net that corrects
    context = crops[0]["inputs"][None]
    extrapolation = extrapolate(context, 3)
    guess = model.first_guess(context)
    torch.testing.assert_close(guess, model.deterministic(context, extrapolation))
    assert not torch.allclose(guess, extrapolation, atol=1e-2)
    item = ldm.LatentSamples(crops, model.autoencoder, deterministic=model.deterministic)[0]
    torch.testing.assert_close(item["first_guess"], ldm.encode_frames(model.autoencoder, guess)[0],
                               rtol=1e-4, atol=1e-4)
    model.train()
    assert not model.deterministic.training
    z = [ldm.encode_frames(model.autoencoder, _rain(2, n, 32, 32, seed=n)) for n in (4, 3, 3)]
    model(*z).backward()
    assert all(p.grad is None for p in model.deterministic.parameters())


def test_augmented_crops_encode_each_turned_and_reflected_copy(tmp_path):
    synthetic.generate_radar(tmp_path, seed=0, events=2, frames=26, size=64, progress=False)
    crops = samples.RadarSamples(tmp_path / "train", samples.SamplingConfig(crop=32, leads=3), seed=0)
    model = _nowcaster()
    plain, augmented = ldm.LatentSamples(crops, model.autoencoder), ldm.LatentSamples(crops, model.autoencoder, True)
    n = len(crops)
    assert len(augmented) == 8 * n
    for key in ("context", "first_guess", "future"):  # the first n items are the crops as they are
        torch.testing.assert_close(augmented[n - 1][key], plain[n - 1][key])
    raw, copy = crops[1], augmented[5 * n + 1]  # copy 5 of crop 1: a quarter turn, then a reflection
    turned = torch.rot90(raw["targets"], 1, dims=(-2, -1)).flip(-1)
    expected = ldm.encode_frames(model.autoencoder, turned[None])[0]
    torch.testing.assert_close(copy["future"], expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(copy["future"], plain[1]["future"], atol=1e-3)


def test_crps_and_the_flattest_rank_histogram_pick_the_inflation_that_calibrates():
    g = torch.Generator().manual_seed(0)
    m, candidates = 24, (1.0, 1.5, 2.0, 3.0)
    truth = 5 + torch.randn(2, 64, 64, generator=g) * torch.tensor([2.0, 1.0])[:, None, None]  # 2 leads [T, H, W]
    members = 5 + torch.randn(m, 2, 64, 64, generator=g)  # unit spread: lead 0 too narrow
    inflated = [ldm.inflate(members.reshape(m, 2 * 64, 1, 64), m, (f, f)).reshape(m, 2, 64, 64).numpy()
                for f in candidates]
    rng = np.random.default_rng(0)
    counts = np.stack([metrics.rank_counts(x, truth.numpy(), 0.1, rng) for x in inflated])
    assert ldm.best_per_lead(metrics.reliability_index(counts), candidates) == (2.0, 1.0)
    crps = np.stack([metrics.crps_ensemble(x, truth.numpy()).mean(axis=(-2, -1)) for x in inflated])
    assert ldm.best_per_lead(crps, candidates) == (2.0, 1.0)


def test_inflation_keeps_the_ensemble_mean_and_scales_each_leads_spread():
    g = torch.Generator().manual_seed(1)
    residuals = torch.randn(2 * 3, 2 * 4, 5, 5, generator=g)  # 2 contexts x 3 members, 2 leads x 4 channels
    out = ldm.inflate(residuals, members=3, factors=(2.0, 0.5))
    before, after = residuals.reshape(2, 3, 2, 4, 5, 5), out.reshape(2, 3, 2, 4, 5, 5)
    torch.testing.assert_close(after.mean(1), before.mean(1))
    torch.testing.assert_close(after.std(1)[:, 0], 2.0 * before.std(1)[:, 0])
    torch.testing.assert_close(after.std(1)[:, 1], 0.5 * before.std(1)[:, 1])


def test_fitted_spread_inflates_the_members_and_nothing_else():
    context, extrapolation = _rain(1, 4, 32, 32), _rain(1, 3, 32, 32, seed=1)
    plain = _nowcaster().sample(context, extrapolation, 3, torch.Generator().manual_seed(5))
    spread = _nowcaster(spread=(1.0, 1.0, 1.0)).sample(context, extrapolation, 3, torch.Generator().manual_seed(5))
    torch.testing.assert_close(spread, plain)  # factors of 1 change nothing
    z_context, z_extrapolation = (ldm.encode_frames(_nowcaster().autoencoder, x) for x in (context, extrapolation))
    drawn = [_nowcaster(spread=(3.0, 1.0, 0.5)).residuals(z_context, z_extrapolation, 3,
                                                          torch.Generator().manual_seed(5), inflated=inflated)
             for inflated in (False, True)]
    torch.testing.assert_close(drawn[1], ldm.inflate(drawn[0], 3, (3.0, 1.0, 0.5)))
    assert drawn[1][:, :4].std(0).mean() > 2.5 * drawn[0][:, :4].std(0).mean()  # lead 1 spread out


def test_detail_weights_fade_the_first_guess_small_scales_and_nothing_else():
    """With the exact field of a zero residual, weights of 1 give the first guess, weights of 0 its
    autoencoder reconstruction D(E(g)); lead by lead in between, in log rain."""
    context, extrapolation = _rain(1, 4, 32, 32), _rain(1, 3, 32, 32, seed=1)
    forecasts = []
    for weights in ((), (1.0, 1.0, 1.0), (1.0, 0.5, 0.0)):
        model = _nowcaster(sampler="euler", detail=weights)
        model.field = lambda cond: (lambda x, t: -x / (1 - t).view(-1, 1, 1, 1))
        forecasts.append(model.sample(context, extrapolation, 1, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(forecasts[1], forecasts[0])
    z = ldm.encode_frames(model.autoencoder, extrapolation)
    smooth = ldm.decode_log_frames(model.autoencoder, z, (32, 32))
    small = torch.log1p(extrapolation) - smooth
    for lead, b in enumerate((1.0, 0.5, 0.0)):
        expected = torch.expm1((smooth[:, lead] + b * small[:, lead]).clamp_min(0))
        torch.testing.assert_close(forecasts[2][:, lead], torch.where(expected >= 0.1, expected, 0.0),
                                   atol=1e-4, rtol=1e-4)
    assert not torch.allclose(forecasts[2][:, 2], forecasts[0][:, 2], atol=1e-2)


def test_detail_weights_are_the_regression_of_observed_on_guessed_small_scales():
    g = np.random.default_rng(0)
    guessed = g.normal(size=(4, 3, 16, 16))
    noise = g.normal(size=guessed.shape)
    observed = np.stack([guessed[:, 0], 0.4 * guessed[:, 1] + 0.3 * noise[:, 1], -guessed[:, 2]], axis=1)
    b = ldm.detail_weights(guessed, observed)
    assert b[0] == pytest.approx(1.0) and b[1] == pytest.approx(0.4, abs=0.03) and b[2] == 0.0  # clipped to [0, 1]


def test_fitted_detail_keeps_small_scales_that_persist():
    """Crops whose future is their first guess (here the extrapolation of a frozen field) get weight 1."""
    model = _nowcaster()
    frame = _rain(1, 1, 32, 32)
    crops = [{"inputs": frame[0].expand(4, -1, -1), "targets": extrapolate(frame.expand(1, 4, -1, -1), 3)[0]}]
    assert ldm.fit_detail(model, crops, margin=4) == pytest.approx((1.0, 1.0, 1.0))
