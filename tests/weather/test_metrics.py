import numpy as np
import pytest

from weather import metrics


def _fields(seed: int = 0, shape=(32, 32)):
    rng = np.random.default_rng(seed)
    obs = np.where(rng.random(shape) < 0.4, rng.lognormal(0.5, 1.0, shape), 0.0)
    fc = np.where(rng.random(shape) < 0.4, rng.lognormal(0.5, 1.0, shape), 0.0)
    return fc, obs


@pytest.mark.parametrize("threshold", [1.0, 4.0])
def test_csi_matches_pysteps(threshold):
    from pysteps.verification import det_cat_fct

    fc, obs = _fields()
    ours = metrics.csi_from_counts(metrics.contingency(fc, obs, threshold))
    assert ours == pytest.approx(det_cat_fct(fc, obs, threshold, scores=["CSI"])["CSI"], rel=1e-12)


def test_csi_perfect_and_accumulated():
    fc, obs = _fields()
    assert metrics.csi_from_counts(metrics.contingency(obs, obs, 1.0)) == 1.0
    a, b = metrics.contingency(fc, obs, 1.0), metrics.contingency(obs, fc, 1.0)
    both = metrics.contingency(np.stack([fc, obs]), np.stack([obs, fc]), 1.0).sum(axis=0)
    np.testing.assert_array_equal(a + b, both)
    assert np.isnan(metrics.csi_from_counts(metrics.contingency(np.zeros((4, 4)), np.zeros((4, 4)), 1.0)))


def test_crps_matches_pysteps_and_brute_force():
    from pysteps.verification.probscores import CRPS

    rng = np.random.default_rng(1)
    members = rng.lognormal(0, 1, (7, 16, 16))
    obs = rng.lognormal(0, 1, (16, 16))
    ours = metrics.crps_ensemble(members, obs)
    assert ours.mean() == pytest.approx(CRPS(members, obs), rel=1e-10)
    brute = np.abs(members - obs).mean(0) - 0.5 * np.abs(members[:, None] - members[None]).mean((0, 1))
    np.testing.assert_allclose(ours, brute, rtol=1e-12)
    np.testing.assert_allclose(metrics.crps_ensemble(obs[None], obs), 0.0)
    np.testing.assert_allclose(metrics.crps_ensemble(members[:1], obs), np.abs(members[0] - obs))


def test_rapsd_matches_pysteps():
    from pysteps.utils.spectral import rapsd

    fc, _ = _fields(shape=(32, 32))
    ours, wavelength = metrics.rapsd(np.stack([fc, 2 * fc]))
    np.testing.assert_allclose(ours[0], rapsd(fc, np.fft), rtol=1e-10)
    np.testing.assert_allclose(ours[1], 4 * ours[0])
    assert wavelength[1] == 32 and wavelength[16 - 1] == pytest.approx(32 / 15)


def test_rapsd_of_a_plane_wave_peaks_at_its_wavelength():
    x = np.arange(64)
    wave = np.cos(2 * np.pi * x / 8)[None, :].repeat(64, axis=0)
    psd, wavelength = metrics.rapsd(wave)
    assert wavelength[np.argmax(psd[1:]) + 1] == 8


def test_pool():
    field = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(metrics.pool(field, 2, "max"), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(metrics.pool(field, 2, "mean"), [[2.5, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError, match="'max' or 'mean'"):
        metrics.pool(field, 2, "median")


def test_scores_skip_invalid_pixels_and_perfect_forecasts_score_perfectly():
    _, obs = _fields(shape=(16, 16))
    obs = np.stack([obs, obs[::-1]])                   # [T=2, H, W]
    valid = np.ones((16, 16), bool)
    valid[:, :4] = False
    s = metrics.Scores(thresholds=(1.0,), csi_pool=4, crps_pools=(4,))
    wrong_outside = obs.copy()
    wrong_outside[:, :, :4] += 50.0
    s.add(wrong_outside[None], obs, valid)
    np.testing.assert_array_equal(s.csi(1.0), [1.0, 1.0])
    np.testing.assert_array_equal(s.csi(1.0, pooled=True), [1.0, 1.0])
    np.testing.assert_allclose(s.mean_crps("pixel"), 0.0)
    np.testing.assert_allclose(s.mean_crps("max4"), 0.0)
    with pytest.raises(ValueError, match="do not match"):
        s.add(obs[None, :1], obs, valid)


@pytest.mark.parametrize("threshold,scale", [(1.0, 1), (1.0, 5), (4.0, 16)])
def test_fss_matches_pysteps_including_no_data(threshold, scale):
    from pysteps.verification.spatialscores import fss

    fc, obs = _fields(3, (48, 40))
    valid = np.ones(obs.shape, bool)
    valid[:6] = False  # outside the coverage: NaN for pysteps, dry for us
    ours = metrics.fss_from_sums(metrics.fss_sums(fc, obs, threshold, scale, valid))
    # pysteps keeps the forecast's rain outside the coverage: compare on a forecast that is dry there too
    expected = fss(np.where(valid, fc, 0.0), np.where(valid, obs, np.nan), threshold, scale)
    assert ours == pytest.approx(expected, rel=1e-12)
    assert metrics.fss_from_sums(metrics.fss_sums(obs, obs, threshold, scale)) == 1.0


def test_fss_accumulates_over_leads_and_forecasts():
    fc, obs = _fields(4)
    a, b = metrics.fss_sums(fc, obs, 1.0, 4), metrics.fss_sums(obs, fc, 1.0, 4)
    np.testing.assert_allclose(metrics.fss_sums(np.stack([fc, obs]), np.stack([obs, fc]), 1.0, 4).sum(0), a + b)


def test_rank_histogram_matches_pysteps_without_ties():
    from pysteps.verification.ensscores import rankhist_accum, rankhist_init

    rng = np.random.default_rng(5)
    members, obs = rng.lognormal(0, 1, (5, 16, 16)), rng.lognormal(0, 1, (16, 16))
    expected = rankhist_init(5, X_min=0.1)
    rankhist_accum(expected, members, obs)
    ours = metrics.rank_counts(members, obs, 0.1, np.random.default_rng(0))
    np.testing.assert_array_equal(ours, expected["n"])


def test_rank_histogram_of_a_calibrated_ensemble_is_flat_and_ties_spread_evenly():
    rng = np.random.default_rng(6)
    draws = rng.normal(0, 1, (7, 2, 64, 64)) + 3  # observation and 6 members from one distribution, per lead
    counts = metrics.rank_counts(draws[1:], draws[0], 0.1, rng)
    assert counts.shape == (2, 7) and counts.sum() == 2 * 64 * 64
    assert metrics.reliability_index(counts).max() < 0.05
    tied = metrics.rank_counts(np.full((3, 8, 8), 2.0), np.full((8, 8), 2.0), 0.1, rng)  # all tied: any rank
    assert (tied > 0).all()
    dry = metrics.rank_counts(np.zeros((3, 8, 8)), np.zeros((8, 8)), 0.1, rng)  # dry everywhere: left out
    assert dry.sum() == 0
    assert metrics.reliability_index(np.array([10, 0, 0, 0])) == pytest.approx(2 * 3 / 4)


def test_ensemble_median_and_mean_csi():
    """The median of three members has rain where two of them do; their mean where the mean rate reaches the
    threshold (here also where one member has 5 mm/h); one member's median and mean are itself."""
    obs = np.zeros((1, 4, 4))
    obs[0, 0] = 5.0
    members = np.zeros((3, 1, 4, 4))
    members[:2, 0, 0] = 5.0          # two members right on row 0
    members[2, 0, 1] = 5.0           # one member wrong on row 1
    s = metrics.Scores(thresholds=(1.0,), fss_scales=(4,))
    s.add(members, obs, np.ones((4, 4), bool))
    assert s.summary_csi(1.0)[0] == 1.0 and s.csi(1.0)[0] == pytest.approx(8 / 16)
    assert s.summary_csi(1.0, "mean")[0] == pytest.approx(4 / 8)  # row 0 hit, row 1 (5/3 mm/h) a false alarm
    single = metrics.Scores(thresholds=(1.0,), fss_scales=(4,))
    single.add(members[2:], obs, np.ones((4, 4), bool))
    assert single.summary_csi(1.0)[0] == single.summary_csi(1.0, "mean")[0] == single.csi(1.0)[0] == 0.0
