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


def test_large_scales_live_longer():
    phi = synthetic.ar2_params(np.array([2.0, 16.0, 128.0]), 5.0)
    rho1 = phi[:, 0] / (1 - phi[:, 1])  # lag-1 autocorrelation of an AR(2) process
    assert np.all(np.diff(rho1) > 0) and rho1[0] > 0.8


def test_bad_options():
    with pytest.raises(ValueError, match="file-format"):
        synthetic.generate_radar("unused", file_format="grib")
