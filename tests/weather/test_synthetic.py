import dataclasses

import numpy as np
import pytest

from datasets.radar import open_radar
from weather import synthetic


def _calm(rng, **changes) -> synthetic.EventParams:
    params = dataclasses.replace(synthetic.draw_event(rng), growth=0.0, shear=0.0, vortex=0.0, **changes)
    return params


def test_same_seed_same_archive(tmp_path):
    a = synthetic.generate_radar(tmp_path / "a", seed=3, events=1, frames=6, size=32, progress=False)
    b = synthetic.generate_radar(tmp_path / "b", seed=3, events=1, frames=6, size=32, progress=False)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(open_radar(pa)["precip_intensity"].values,
                                      open_radar(pb)["precip_intensity"].values)
    assert {p.parent.name for p in a} == {"train", "valid", "test"}


def test_wet_fraction_and_log_normal_rates():
    rng = np.random.default_rng(0)
    params = _calm(rng, wet_fraction=0.25, log_median=0.0, log_std=1.2)
    rain = synthetic.simulate_event(params, rng, size=128, frames=3)
    np.testing.assert_allclose((rain > 0).mean(axis=(1, 2)), 0.25, atol=1e-3)
    wet = np.log(rain[rain > 0])  # the threshold floor (0.1 mm/h) moves only the lowest 3%
    assert np.median(wet) == pytest.approx(0.0, abs=0.01)
    assert np.percentile(wet, 84) - np.median(wet) == pytest.approx(1.2, rel=0.05)


def test_rain_moves_with_the_mean_wind():
    """A uniform wind of (u_y, u_x) km/h moves the field by u * 5 min per frame (cross-correlation peak)."""
    rng = np.random.default_rng(1)
    params = _calm(rng, wet_fraction=0.4, mean_wind=(24.0, -48.0))  # (2, -4) pixels per frame
    rain = synthetic.simulate_event(params, rng, size=128, frames=2)
    a, b = (np.log1p(r) - np.log1p(r).mean() for r in rain)
    corr = np.fft.ifft2(np.fft.fft2(b) * np.conj(np.fft.fft2(a))).real
    shift = np.unravel_index(np.argmax(corr), corr.shape)
    assert tuple((s + 64) % 128 - 64 for s in shift) == (2, -4)


@pytest.mark.parametrize("preset", ["reference", "hard"])
def test_each_band_decorrelates_at_its_lifetime(preset):
    """Lag-1 correlation exp(-dt / tau) with tau = tau_8km (L / 8 km)^exponent: larger scales live longer."""
    lifetimes, wavelengths = synthetic.PRESETS[preset], np.array([2.0, 8.0, 16.0, 128.0])
    phi = synthetic.ar2_params(wavelengths, 5.0, lifetimes)
    rho1 = phi[:, 0] / (1 - phi[:, 1])  # lag-1 autocorrelation of an AR(2) process
    tau = lifetimes.tau_8km_min * (wavelengths / 8.0) ** lifetimes.exponent
    np.testing.assert_allclose(rho1, np.exp(-5.0 / tau), rtol=1e-6)
    assert np.all(np.diff(rho1) > 0)


def test_the_hard_preset_changes_the_lifetimes_only():
    """Same seed, same events and rain statistics; the pattern decorrelates far faster from frame to frame."""
    def run(preset):
        rng = np.random.default_rng(5)
        params = _calm(rng, wet_fraction=0.3, mean_wind=(0.0, 0.0))
        return params, synthetic.simulate_event(params, rng, size=64, frames=4, lifetimes=synthetic.PRESETS[preset])

    (p_ref, ref), (p_hard, hard) = run("reference"), run("hard")
    assert p_ref == p_hard
    np.testing.assert_allclose((hard > 0).mean(axis=(1, 2)), (ref > 0).mean(axis=(1, 2)), atol=1e-3)
    np.testing.assert_allclose(np.sort(hard[0], axis=None), np.sort(ref[0], axis=None))  # the same marginal
    corr = {name: np.corrcoef(np.log1p(x[0]).ravel(), np.log1p(x[3]).ravel())[0, 1]
            for name, x in (("reference", ref), ("hard", hard))}
    assert corr["reference"] > 0.9 and corr["hard"] < 0.75, corr


def test_bad_options():
    with pytest.raises(ValueError, match="file-format"):
        synthetic.generate_radar("unused", file_format="grib")
    with pytest.raises(ValueError, match="preset must be one of reference, hard"):
        synthetic.generate_radar("unused", preset="harder")
