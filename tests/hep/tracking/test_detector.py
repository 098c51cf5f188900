"""Detector physics: helix radius from the field, Highland scattering, hits only inside the layers."""
import awkward as ak
import numpy as np
import pytest
import uproot

from hep.tracking.data import generate_tracking
from hep.tracking.detector import C_LIGHT, Detector, Layer, Particles, highland, sample_particles, simulate_event


def circle_radius(xy):
    """Algebraic (Kasa) circle fit."""
    a = np.column_stack([2 * xy[:, 0], 2 * xy[:, 1], np.ones(len(xy))])
    c = np.linalg.lstsq(a, (xy ** 2).sum(1), rcond=None)[0]
    return np.sqrt(c[2] + c[0] ** 2 + c[1] ** 2)


def fitted_relative_errors(detector, particles, rng, min_hits=3):
    hits = simulate_event(particles, detector, rng)
    out = []
    for i in range(len(particles.charge)):
        xy = hits.position[hits.particle_id == i, :2]
        if len(xy) >= min_hits:
            out.append(circle_radius(xy) / (particles.pt[i] / (C_LIGHT * detector.field_tesla) * 1000) - 1)
    return np.array(out)


def test_truth_hits_lie_on_the_helix_of_radius_pt_over_0_3_b():
    rng = np.random.default_rng(0)
    detector = Detector(scattering=False, smearing=False, efficiency=1.0)
    particles = sample_particles(300, rng)
    assert np.abs(fitted_relative_errors(detector, particles, rng)).max() < 1e-9
    hits = simulate_event(particles, detector, rng)
    r = np.hypot(hits.position[:, 0], hits.position[:, 1])
    layers = detector.arrays()
    assert np.allclose(r, layers[hits.layer, 0]) and (np.abs(hits.position[:, 2]) <= layers[hits.layer, 1]).all()
    # z advances linearly with the transverse arc length: dz/ds = cot(theta) = sinh(eta)
    i = int(np.argmax(np.bincount(hits.particle_id)))
    xyz = hits.position[hits.particle_id == i]
    R = particles.pt[i] / (C_LIGHT * 2.0) * 1000
    chord = np.hypot(xyz[:, 0] - particles.vertex[i, 0], xyz[:, 1] - particles.vertex[i, 1])
    arc = 2 * R * np.arcsin(chord / (2 * R))
    assert np.allclose(xyz[:, 2] - particles.vertex[i, 2], arc * np.sinh(particles.eta[i]), atol=1e-6)


def test_radius_resolution_with_scattering_and_smearing():
    rng = np.random.default_rng(1)
    particles = sample_particles(2000, rng, pt_min=1.0, pt_power=50.0, eta_max=1.0)  # pT ~ 1 GeV
    errors = fitted_relative_errors(Detector(), particles, rng, min_hits=5)
    assert abs(np.mean(errors)) < 0.002 and np.std(errors) < 0.03


def test_scattering_angle_width_matches_highland():
    """A thin layer at r = 100 mm, 1 GeV pions along x in a negligible field: the displacement at r = 600 mm
    divided by the lever arm is the projected scattering angle, in both planes."""
    n = 20000
    detector = Detector(layers=(Layer(100.0, 5e3, 0.05, 0.0, 0.0), Layer(600.0, 5e3, 0.0, 0.0, 0.0)),
                        field_tesla=1e-6, smearing=False, efficiency=1.0)
    beam = Particles(np.zeros((n, 3)), np.tile([1.0, 0.0, 0.0], (n, 1)), np.ones(n))
    hits = simulate_event(beam, detector, np.random.default_rng(2))
    outer = hits.position[hits.layer == 1]
    expected = highland(1.0, 0.05)
    assert outer[:, 1].std() / 500 == pytest.approx(expected, rel=0.03)
    assert outer[:, 2].std() / 500 == pytest.approx(expected, rel=0.03)


def test_inefficiency_and_noise():
    rng = np.random.default_rng(3)
    particles = sample_particles(500, rng, eta_max=1.0)
    full = simulate_event(particles, Detector(efficiency=1.0), np.random.default_rng(4))
    lossy = simulate_event(particles, Detector(efficiency=0.9, noise_per_layer=20), np.random.default_rng(4))
    real = (lossy.particle_id >= 0).sum()
    assert real / len(full.layer) == pytest.approx(0.9, abs=0.02)
    assert (lossy.particle_id == -1).sum() == pytest.approx(200, abs=60)


def test_generated_events_round_trip_through_root(tmp_path):
    files = generate_tracking(tmp_path, seed=7, events=4, particles=50, noise_per_layer=2, progress=False)
    assert [f.name for f in files] == ["train.root", "valid.root", "test.root"]
    with uproot.open(files[0]) as f:
        hits, parts = f["hits"].arrays(library="ak"), f["particles"].arrays(library="ak")
    assert len(hits) == 4 and ak.all(hits.nhits == ak.num(hits.x))
    for e in range(4):  # nhits per particle agrees with the hits tree
        pid = ak.to_numpy(hits.particle_id[e])
        assert np.array_equal(np.bincount(pid[pid >= 0], minlength=len(parts.pt[e])), ak.to_numpy(parts.nhits[e]))
    again = generate_tracking(tmp_path / "again", seed=7, events=4, particles=50, noise_per_layer=2, progress=False)
    with uproot.open(again[0]) as f:
        assert ak.all(ak.flatten(f["hits"]["x"].array()) == ak.flatten(hits.x))


def test_pythia_minimum_bias_pileup():
    pytest.importorskip("pythia8mc")
    from hep.tracking.pythia import MinimumBias

    source = MinimumBias(seed=3, batch=50)
    rng = np.random.default_rng(5)
    crossing = source.next(20, rng)
    pt, eta = crossing.pt, crossing.eta
    assert (pt > 0.5).all() and (np.abs(eta) < 2.5).all() and set(np.unique(crossing.charge)) <= {-2, -1, 1, 2}
    vertices = np.unique(crossing.vertex[:, 2])
    assert 8 <= len(vertices) <= 35  # Poisson(20) interactions, each at its own z
    assert 8 < len(pt) / len(vertices) < 40  # charged particles per interaction above 0.5 GeV in |eta| < 2.5
    hits = simulate_event(crossing, Detector(), rng)
    assert (hits.particle_id >= 0).all() and len(hits.layer) > 5 * len(pt)
