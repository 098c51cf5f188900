"""Displaced tracks and secondary vertices: geometry against brute force, ancestry on a hand-built record,
and the physics of Pythia's decays (b-hadron flight lengths, prompt-track impact parameters)."""
import numpy as np
import pytest
from scipy import stats

from hep.jets.vertices import TrackResolution, flavour, impact_parameters, nearest_long_lived, track_branches


def test_impact_parameters_are_the_closest_approach_to_the_beam_line():
    rng = np.random.default_rng(0)
    vertex, momentum = rng.normal(0, 2.0, (50, 3)), rng.normal(0, 10.0, (50, 3))
    d0, z0 = impact_parameters(vertex, momentum)
    s = np.linspace(-5, 5, 200_001)[:, None]  # brute force: walk each line, keep its nearest point to the z axis
    x, y = vertex[:, 0] + s * momentum[:, 0], vertex[:, 1] + s * momentum[:, 1]
    nearest = np.argmin(x ** 2 + y ** 2, axis=0)
    cols = np.arange(50)
    assert np.abs(np.abs(d0) - np.hypot(x[nearest, cols], y[nearest, cols])).max() < 1e-3
    assert np.abs(z0 - (vertex[:, 2] + s[nearest, 0] * momentum[:, 2])).max() < 1e-2
    d0, z0 = impact_parameters(np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]),
                               np.array([[5.0, 0.0, 3.0], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(d0, [-1.0, 0.0])  # sign: z of (vertex x momentum) / pT
    np.testing.assert_allclose(z0, [2.0, 0.0])


def test_flavour_is_the_heaviest_quark_of_hadrons_only():
    ids = np.array([521, -511, 531, 5122, -5232, 10521, 553, 421, -411, 4122, 443, 211, -321, 2212, 11, 15, 5, 4, 21])
    assert flavour(ids).tolist() == [5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0]


def test_nearest_long_lived_ancestor_follows_first_mothers():
    #           0   1  2  3  4  5  6  7
    mother = np.array([-1, 0, 1, 2, 3, 2, 5, 0])
    long_lived = np.array([False, False, True, False, True, False, False, True])
    assert nearest_long_lived(mother, long_lived).tolist() == [-1, -1, -1, 2, 2, 2, 2, -1]


@pytest.fixture(scope="module")
def record():
    pytest.importorskip("pythia8mc")
    from hep.jets.generate import make_pythia
    from hep.jets.vertices import DecayRecord

    pythia = make_pythia("top", seed=11)
    return DecayRecord.from_pythia(pythia.nextBatch(150).prt, pythia.particleData)


def test_b_hadron_flight_length_follows_its_boosted_lifetime(record):
    b = np.nonzero(record.long_lived & (record.flavour == 5))[0]
    assert len(b) > 200
    flight = np.linalg.norm(record.decay_vertex[b] - record.vertex[b], axis=1)  # [mm], from the daughters' vertices
    p, e = np.linalg.norm(record.momentum[b, :3], axis=1), record.momentum[b, 3]
    proper = flight * np.sqrt(e ** 2 - p ** 2) / p  # L / (beta gamma)
    assert np.median(flight) > 1.0  # boosted: ttbar b hadrons fly millimetres
    assert 0.40 < proper.mean() < 0.52  # c tau of B+/B0/Bs/Lambda_b: 0.44-0.49 mm
    assert stats.kstest(proper / proper.mean(), "expon").pvalue > 0.01  # exponential decay law
    c = np.nonzero(record.long_lived & (record.flavour == 4))[0]  # charm: shorter (D0 0.12 mm, D+ 0.31 mm)
    c_proper = (np.linalg.norm(record.decay_vertex[c] - record.vertex[c], axis=1)
                * np.sqrt(record.momentum[c, 3] ** 2 - np.linalg.norm(record.momentum[c, :3], axis=1) ** 2)
                / np.linalg.norm(record.momentum[c, :3], axis=1))
    assert 0.08 < c_proper.mean() < 0.3


def test_prompt_track_impact_parameters_follow_the_resolution_model(record):
    final = np.nonzero((record.charge != 0) & ~np.isfinite(record.decay_vertex[:, 0]))[0]
    prompt = final[record.origin[final] < 0]
    displaced = final[record.origin[final] >= 0]
    resolution = TrackResolution()
    tracks = track_branches(record, prompt, resolution, np.random.default_rng(0))
    pt = np.hypot(record.momentum[prompt, 0], record.momentum[prompt, 1])
    np.testing.assert_allclose(tracks["part_d0err"], 0.010 + 0.070 / pt)
    for value, error in (("part_d0val", "part_d0err"), ("part_dzval", "part_dzerr")):
        pull = tracks[value] / tracks[error]
        assert stats.kstest(pull, "norm").pvalue > 0.01, value  # true impact parameters of prompt tracks vanish
    displaced_d0 = track_branches(record, displaced, resolution, np.random.default_rng(0))["part_d0val"]
    assert np.median(np.abs(displaced_d0)) > 5 * np.median(np.abs(tracks["part_d0val"]))
    neutral = np.nonzero(record.charge == 0)[0][:100]
    assert not any(track_branches(record, neutral, resolution, np.random.default_rng(0))[k].any()
                   for k in ("part_d0val", "part_d0err", "part_dzval", "part_dzerr"))
