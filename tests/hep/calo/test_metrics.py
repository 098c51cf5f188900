"""CaloChallenge metrics against brute force, sklearn and analytic cases."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from datasets.showers import CaloGeometry
from hep.calo import metrics

SMALL = CaloGeometry(n_layers=2, n_alpha=4, n_radial=3)


def test_high_level_features_match_a_voxel_loop():
    rng = np.random.default_rng(0)
    showers = rng.exponential(1.0, (3, SMALL.n_voxels)) * (rng.random((3, SMALL.n_voxels)) > 0.3)
    showers[2, :SMALL.n_alpha * SMALL.n_radial] = 0  # an empty first layer
    energy = np.array([[10.0], [20.0], [30.0]])
    f = metrics.high_level_features(showers, energy, SMALL)
    for n in range(3):
        assert f["E_ratio"][n] == pytest.approx(showers[n].sum() / energy[n, 0])
        for layer in range(SMALL.n_layers):
            e = eta = phi = eta2 = nonzero = 0.0
            for a in range(SMALL.n_alpha):
                for r in range(SMALL.n_radial):
                    v = showers[n, (layer * SMALL.n_alpha + a) * SMALL.n_radial + r]
                    radius, angle = (r + 0.5) * SMALL.radial_width, (a + 0.5) * 2 * np.pi / SMALL.n_alpha
                    e, eta, phi = e + v, eta + v * radius * np.cos(angle), phi + v * radius * np.sin(angle)
                    eta2, nonzero = eta2 + v * (radius * np.cos(angle)) ** 2, nonzero + (v > 0)
            assert f["E_layer"][n, layer] == pytest.approx(e)
            assert f["sparsity"][n, layer] == pytest.approx(nonzero / (SMALL.n_alpha * SMALL.n_radial))
            if e > 0:
                assert f["center_eta"][n, layer] == pytest.approx(eta / e)
                assert f["center_phi"][n, layer] == pytest.approx(phi / e)
                assert f["width_eta"][n, layer] == pytest.approx(np.sqrt(eta2 / e - (eta / e) ** 2))
            else:
                assert f["center_eta"][n, layer] == 0 and f["width_eta"][n, layer] == 0
    assert metrics.feature_matrix(f).shape == (3, 1 + 6 * SMALL.n_layers)


def test_separation_power_is_zero_for_identical_and_one_for_disjoint_samples():
    x = np.random.default_rng(1).normal(size=1000)
    assert metrics.separation_power(x, x) == 0
    assert metrics.separation_power(x, x + 100) == pytest.approx(1.0, abs=0.005)  # generated all in the last bin
    assert 0 < metrics.separation_power(x, x + 0.5) < 1


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(2)
    labels = rng.random(500) > 0.4
    scores = np.round(rng.normal(size=500) + labels, 1)  # rounding makes ties
    assert metrics.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc(np.ones(3), np.arange(3.0))


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3))
    assert metrics.frechet_distance(a, b) < 0.01
    assert metrics.frechet_distance(a, b + [2.0, 0, 0]) == pytest.approx(4.0, rel=0.03)
    # equal means, standard deviation 2 instead of 1 in one column: (2 - 1)^2 = 1
    assert metrics.frechet_distance(a, b * [2.0, 1, 1]) == pytest.approx(1.0, abs=0.1)


def test_classifier_test_cannot_tell_equal_samples_and_can_tell_different_ones():
    rng = np.random.default_rng(4)
    same = metrics.classifier_test(rng.normal(size=(1500, 5)), rng.normal(size=(1500, 5)), hidden=32, epochs=10)
    assert abs(same["auc"] - 0.5) < 0.06 and same["jsd"] < 0.05
    shifted = metrics.classifier_test(rng.normal(size=(1500, 5)), rng.normal(size=(1500, 5)) + 3.0, hidden=32,
                                      epochs=10)
    assert shifted["auc"] > 0.99 and shifted["jsd"] > 0.8


def test_isotonic_calibration_is_monotone_and_calibrated():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=5000)
    labels = rng.random(5000) < 1 / (1 + np.exp(-3 * scores))
    calibrate = metrics.isotonic_calibration(scores, labels)
    grid = np.linspace(-3, 3, 50)
    assert np.all(np.diff(calibrate(grid)) >= 0)
    assert calibrate(np.array([1.0]))[0] == pytest.approx(1 / (1 + np.exp(-3)), abs=0.1)


def test_fpd_extrapolates_away_the_finite_sample_bias():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(1000, 20)), rng.normal(size=(1000, 20))
    raw = metrics.frechet_distance(a, b)
    fpd, error = metrics.frechet_physics_distance(a, b, repeats=4)
    assert raw > 0.15 and abs(fpd) < max(3 * error, 0.05) and abs(fpd) < raw / 3  # bias ~ d^2 / N removed
    shifted, _ = metrics.frechet_physics_distance(a, b + np.eye(20)[0], repeats=4)
    assert shifted == pytest.approx(1.0, abs=0.15)
