"""The spot representation of showers: exact on GFlash's showers, and the azimuthal split is GFlash's law."""
import numpy as np
import pytest

from datasets.showers import CaloGeometry
from hep.calo.gflash import TUNGSTEN, simulate_showers
from hep.calo.spots import fill_empty_layers, ring_counts_from_fractions, split_azimuth, spot_counts

GEOMETRY = CaloGeometry()


def gflash(n, energy, seed):
    return simulate_showers(np.full(n, energy), GEOMETRY, TUNGSTEN, np.random.default_rng(seed)).deposits


def test_spot_counts_times_spot_energies_are_the_showers():
    showers = np.concatenate([gflash(100, e, i) for i, e in enumerate((1.5e3, 3e4, 9e5))])
    q, counts = spot_counts(showers, GEOMETRY)
    assert q.shape == (300, 45) and counts.shape == (300, 45, 16, 9) and counts.dtype == np.int64
    assert (counts >= 0).all() and counts.max() > 500             # 900 GeV cores hold hundreds of spots
    empty = showers.reshape(300, 45, -1).max(-1) == 0
    assert np.array_equal(np.isnan(q), empty) and empty.any()      # low-energy tails leave layers empty
    rebuilt = (counts * np.nan_to_num(q)[..., None, None]).reshape(300, -1)
    assert np.allclose(rebuilt, showers, rtol=1e-6, atol=0)


def test_a_layer_whose_smallest_deposit_holds_two_spots_gets_the_true_spot_energy():
    layer = np.zeros((1, 45, 16, 9))
    layer[0, 3, 0, :3] = [2 * 0.7, 3 * 0.7, 5 * 0.7]             # no voxel with one spot
    q, counts = spot_counts(layer.reshape(1, -1), GEOMETRY)
    assert q[0, 3] == pytest.approx(0.7) and counts[0, 3, 0, :3].tolist() == [2, 3, 5]


def test_showers_that_are_not_spot_quantised_are_refused():
    showers = np.random.default_rng(0).exponential(1.0, (2, GEOMETRY.n_voxels))
    with pytest.raises(ValueError, match="shower 0, layer 0: .* not integer multiples .* spot-quantised"):
        spot_counts(showers, GEOMETRY)


def test_empty_layers_are_interpolated_between_their_neighbours():
    log_q = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [np.nan] * 5])
    assert fill_empty_layers(log_q).tolist() == [[1.0, 1.0, 2.0, 3.0, 3.0], [0.0] * 5]


def test_ring_counts_sum_to_the_layer_total_and_follow_the_fractions():
    assert ring_counts_from_fractions(np.array([10]), np.array([[0.34, 0.33, 0.33]])).tolist() == [[4, 3, 3]]
    assert ring_counts_from_fractions(np.array([3, 0]), np.array([[-0.2, 0.5, 0.5], [0.1, 0.2, 0.7]])).tolist() \
        == [[0, 2, 1], [0, 0, 0]]                                 # ties go to the first; negatives count as 0
    rng = np.random.default_rng(1)
    totals = rng.integers(0, 5000, (200, 45))
    exact = rng.multinomial(totals, np.full(9, 1 / 9))
    fractions = exact / np.maximum(totals, 1)[..., None]
    assert np.array_equal(ring_counts_from_fractions(totals, fractions), exact)
    noisy = ring_counts_from_fractions(totals, fractions + rng.normal(0, 0.01, exact.shape))
    assert np.array_equal(noisy.sum(-1), totals) and (noisy >= 0).all()


def test_the_azimuthal_split_keeps_ring_counts_and_matches_gflashs_own_spread():
    """Given its ring count n, each voxel count of a GFlash shower is binomial(n, 1/16): the Pearson statistic
    sum_a (c_a - n/16)^2 / (n/16) over a ring has mean 15 (A - 1); the split must give the same."""
    _, counts = spot_counts(gflash(400, 2e4, 2), GEOMETRY)
    rings = counts.sum(axis=2)
    split = split_azimuth(rings, 16, np.random.default_rng(3))
    assert split.shape == counts.shape and np.array_equal(split.sum(axis=2), rings)

    def pearson(voxels):
        n = voxels.sum(axis=2, keepdims=True)
        busy = (n[:, :, 0] >= 32)
        expected = n / 16
        stat = ((voxels - expected) ** 2 / np.where(expected > 0, expected, 1)).sum(axis=2)
        return stat[busy].mean()

    assert pearson(counts) == pytest.approx(15, rel=0.03) and pearson(split) == pytest.approx(15, rel=0.03)
