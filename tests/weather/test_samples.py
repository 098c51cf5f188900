import h5py
import numpy as np
import pytest
import torch

from datasets import radar
from weather import samples, synthetic
from weather.baselines import Extrapolation


def test_acceptance_matches_the_formula_for_every_crop():
    rng = np.random.default_rng(0)
    window = rng.lognormal(0, 1, (3, 12, 10)) * (rng.random((3, 12, 10)) < 0.3)
    cfg = samples.SamplingConfig(crop=4, q_min=0.01, m=0.5, s=2.0)
    q = samples.acceptance(window, 4, cfg)
    assert q.shape == (9, 7)
    for y0, x0 in [(0, 0), (5, 3), (8, 6)]:
        crop = window[:, y0:y0 + 4, x0:x0 + 4]
        expected = min(1.0, 0.01 + 0.5 * np.mean(1 - np.exp(-crop / 2.0)))
        assert q[y0, x0] == pytest.approx(expected, rel=1e-12)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    out = tmp_path_factory.mktemp("radar")
    synthetic.generate_radar(out, seed=0, events=2, frames=26, size=64, progress=False)
    return out


def test_samples_carry_their_acceptance_probability(archive):
    cfg = samples.SamplingConfig(crop=32, candidates=50, q_min=0.05, m=1.0)
    data = samples.RadarSamples(archive / "train", cfg, seed=0)
    again = samples.RadarSamples(archive / "train", cfg, seed=0)
    assert data.crops == again.crops  # seeded
    item = data[0]
    assert item["inputs"].shape == (4, 32, 32) and item["targets"].shape == (18, 32, 32)
    c = data.crops[0]
    frames = data.datasets[c.file]["precip_intensity"].values[c.t0:c.t0 + 22, c.y0:c.y0 + 32, c.x0:c.x0 + 32]
    np.testing.assert_array_equal(item["targets"].numpy(), frames[4:])
    q = np.array([c.q for c in data.crops])
    assert ((q > 0.05) & (q <= 1)).all() and float(item["q"]) == pytest.approx(q[0])
    # kept crops are rainier than the candidates on average: mean 1/q of kept ~ number tried / number kept
    tried = 50 * len({(c.file, c.t0) for c in data.crops})
    assert np.sum(1 / q) == pytest.approx(tried, rel=0.3)


def test_extrapolated_samples_carry_pysteps_extrapolation_of_their_context(archive, monkeypatch):
    data = samples.RadarSamples(archive / "train", samples.SamplingConfig(crop=32, leads=6), seed=0)
    extrapolated = samples.ExtrapolatedSamples(data)
    item = extrapolated[1]
    expected = Extrapolation(6).forecast(data[1]["inputs"].double().numpy())[0]
    np.testing.assert_allclose(item["extrapolation"].numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(item["targets"].numpy(), data[1]["targets"].numpy())
    monkeypatch.setattr(samples, "extrapolate", lambda *args: pytest.fail("extrapolated twice"))
    assert extrapolated[1]["extrapolation"] is item["extrapolation"]  # computed once per crop


def test_acceptance_reads_only_the_context(tmp_path):
    """Selecting crops on their future would bias what a model learns about the future (rain grows)."""
    rng = np.random.default_rng(1)
    rain = (rng.lognormal(0, 1, (6, 32, 32)) * (rng.random((6, 32, 32)) < 0.3)).astype(np.float32)  # one window
    cfg = samples.SamplingConfig(crop=16, context=2, leads=4, q_min=0.05, m=1.0, candidates=8)
    picked = []
    for future in (0.0, 50.0):  # a dry future, then a drenched one
        rain[2:] = future
        path = radar.write_radar(radar.radar_dataset(rain, "2026-05-01T12:00"), tmp_path / f"{future:g}.nc")
        picked.append(samples.sample_crops([radar.open_radar(path)], cfg, seed=3))
    assert picked[0] == picked[1] and picked[0]


def test_crop_larger_than_grid_is_an_error(archive):
    with pytest.raises(ValueError, match="larger than the 64 x 64 grid"):
        samples.RadarSamples(archive / "train", samples.SamplingConfig(crop=96))
    with pytest.raises(FileNotFoundError, match="physml data generate radar"):
        samples.split_folder(archive, "nope")


def test_training_samples_refuse_nan_inside_the_coverage(tmp_path):
    path = radar.write_radar(radar.radar_dataset(np.ones((8, 32, 32), np.float32), "2026-05-01T12:00"),
                             tmp_path / "e.nc")
    with h5py.File(path, "r+") as fh:
        fh[radar.VARIABLE][6, 5, 5] = np.nan  # a late frame: a check of the first frames would miss it
    with pytest.raises(ValueError, match=r"e\.nc: precip_intensity has NaN inside the radar coverage"):
        samples.RadarSamples(tmp_path, samples.SamplingConfig(crop=16, context=2, leads=2))


def test_dihedral_gives_the_eight_symmetries_of_the_square():
    frames = torch.arange(2 * 9.0).reshape(2, 3, 3)
    copies = [samples.dihedral(frames, g) for g in range(samples.SQUARE_SYMMETRIES)]
    assert torch.equal(copies[0], frames)
    assert len({tuple(c[0].flatten().tolist()) for c in copies}) == 8  # all distinct
    assert torch.equal(copies[1][0], torch.tensor([[2.0, 5, 8], [1, 4, 7], [0, 3, 6]]))  # a quarter turn
    assert torch.equal(copies[4][0], frames[0].flip(-1))  # the reflection
    for c in copies:  # each maps frames alike and keeps every value
        assert torch.equal(c[1] - c[0], torch.full((3, 3), 9.0))
    with pytest.raises(ValueError, match="8 symmetries"):
        samples.dihedral(frames, 8)
