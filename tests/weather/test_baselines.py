import numpy as np
import torch

from weather import baselines


def _blob_sequence(frames: int, velocity=(1, 2), size: int = 64) -> np.ndarray:
    """A Gaussian rain cell (peak 20 mm/h) moving ``velocity`` (y, x) pixels per frame."""
    y, x = np.mgrid[:size, :size]
    out = []
    for t in range(frames):
        cy, cx = 20 + velocity[0] * t, 16 + velocity[1] * t
        out.append(20 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 5.0 ** 2)))
    return np.where(np.array(out) > 0.1, np.array(out), 0.0)


def test_persistence_repeats_the_last_frame():
    seq = _blob_sequence(4)
    out = baselines.Persistence(leads=3).forecast(seq)
    assert out.shape == (1, 3, 64, 64)
    np.testing.assert_array_equal(out[0, 2], seq[-1])


def test_extrapolation_follows_a_moving_cell():
    seq = _blob_sequence(10)
    out = baselines.Extrapolation(leads=6).forecast(seq[:4])[0]
    truth = seq[4:]
    persistence_error = np.abs(seq[3] - truth[-1]).mean()
    assert np.abs(out[-1] - truth[-1]).mean() < 0.25 * persistence_error
    peak = np.unravel_index(np.argmax(out[-1]), out[-1].shape)
    assert abs(peak[0] - (20 + 9)) <= 1 and abs(peak[1] - (16 + 18)) <= 1


def test_sprog_follows_a_moving_cell_and_smooths_it():
    rng = np.random.default_rng(0)
    seq = _blob_sequence(10) * rng.lognormal(0, 0.5, (10, 64, 64))  # a textured cell
    sprog = baselines.SProg(leads=6).forecast(seq[:4])
    extrapolation = baselines.Extrapolation(leads=6).forecast(seq[:4])
    assert sprog.shape == (1, 6, 64, 64) and (sprog >= 0).all()
    truth = seq[4:]
    assert np.abs(sprog[0, -1] - truth[-1]).mean() < 0.5 * np.abs(seq[3] - truth[-1]).mean()
    roughness = lambda f: np.abs(np.diff(np.log1p(f), axis=-1)).mean()  # noqa: E731
    assert roughness(sprog[0, -1]) < 0.8 * roughness(extrapolation[0, -1])  # the fast small scales fade
    np.testing.assert_array_equal(baselines.SProg(leads=2).forecast(np.zeros((4, 16, 16))), 0.0)


def test_steps_ensemble_is_seeded_and_non_negative():
    rng = np.random.default_rng(0)
    seq = _blob_sequence(4) * rng.lognormal(0, 0.3, (4, 64, 64))
    steps = baselines.Steps(leads=3)
    a = steps.forecast(seq, members=3, seed=1)
    b = steps.forecast(seq, members=3, seed=1)
    assert a.shape == (3, 3, 64, 64) and (a >= 0).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # members differ
    np.testing.assert_array_equal(steps.forecast(np.zeros((4, 16, 16)), members=2), 0.0)


def test_db_round_trip():
    rain = np.array([0.0, 0.05, 0.1, 1.0, 50.0])
    np.testing.assert_allclose(baselines.from_db(baselines.to_db(rain)), [0, 0, 0.1, 1.0, 50.0])


def test_model_nowcast_members():
    class Noisy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x, generator=None):
            noise = torch.rand(x.shape[0], 2, *x.shape[2:], generator=generator)
            return self.scale * x[:, -1:] + noise

    nowcast = baselines.ModelNowcast(Noisy(), "noisy", stochastic=True, batch=2)
    context = np.ones((4, 8, 8), np.float32)
    out = nowcast.forecast(context, members=5, seed=3)
    assert out.shape == (5, 2, 8, 8)
    np.testing.assert_array_equal(out, nowcast.forecast(context, members=5, seed=3))
    assert len({float(m.sum()) for m in out}) == 5
