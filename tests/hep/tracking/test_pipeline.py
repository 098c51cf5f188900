"""Graph building against brute force, track metrics against hand-made cases, Hough and GNN end to end."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gnn.graph import GraphBatch
from hep.tracking.detector import Detector, Particles, sample_particles, simulate_event
from hep.tracking.evaluate import region_report
from hep.tracking.graph import GraphCuts, build_graph, efficiency_purity, features
from hep.tracking.hough import HoughConfig, hough_tracks, tune_hough
from hep.tracking.model import EdgeClassifier, EdgeClassifierConfig
from hep.tracking.tracks import build_tracks, order_weight, pooled, tracking_metrics
from physml.cli import main
from training.report import read_report


def event(n=300, seed=0, **detector):
    rng = np.random.default_rng(seed)
    particles = sample_particles(n, rng)
    return particles, simulate_event(particles, Detector(**detector), rng)


def brute_force_edges(position, layer, cuts):
    r = np.hypot(position[:, 0], position[:, 1])
    phi, z = np.arctan2(position[:, 1], position[:, 0]), position[:, 2]
    edges = set()
    for a in range(len(layer)):
        for b in range(len(layer)):
            if 1 <= layer[b] - layer[a] <= cuts.max_skip:
                dr = r[b] - r[a]
                dphi = (phi[b] - phi[a] + np.pi) % (2 * np.pi) - np.pi
                if abs(dphi) / dr < cuts.phi_slope_max and abs(z[a] - r[a] * (z[b] - z[a]) / dr) < cuts.z0_max:
                    edges.add((a, b))
    return edges


def test_graph_edges_equal_the_brute_force_pairs_and_keep_fast_particles():
    particles, hits = event(120, noise_per_layer=3)
    cuts = GraphCuts()
    graph = build_graph(hits.position, hits.layer, hits.particle_id, 10, cuts)
    assert set(zip(graph.senders.tolist(), graph.receivers.tolist())) == brute_force_edges(hits.position, hits.layer,
                                                                                           cuts)
    efficiency, purity = efficiency_purity(graph, hits.layer, hits.particle_id, particles.pt > 1.0)
    assert efficiency > 0.99 and 0 < purity < 1
    # truth: same particle, no hit of it on a layer in between
    for s, t, y in zip(graph.senders, graph.receivers, graph.y):
        same = hits.particle_id[s] == hits.particle_id[t] >= 0
        between = same and np.any((hits.particle_id == hits.particle_id[s]) & (hits.layer > hits.layer[s])
                                  & (hits.layer < hits.layer[t]))
        assert y == (same and not between)


def test_perfect_track_labels_score_one_and_metrics_count_correctly():
    particles, hits = event(200, seed=1)
    truth_labels = np.where(hits.particle_id >= 0, hits.particle_id, -1)
    m = tracking_metrics(truth_labels, hits.layer, hits.particle_id, particles.pt)
    assert m["trackml_score"] == pytest.approx(1.0) and m["fakes"] == 0 and m["duplicates"] == 0
    assert m["matched"] == m["reconstructable"] > 0
    # deal every particle's hits to three tracks by layer: no piece holds more than half of its particle
    thirds = np.where(truth_labels >= 0, 3 * truth_labels + hits.layer % 3, -1)
    split = pooled([tracking_metrics(thirds, hits.layer, hits.particle_id, particles.pt)])
    assert split["efficiency"] < 0.1 and split["fake_rate"] > 0.9
    assert order_weight(3).sum() == 0 and order_weight(9)[0] > order_weight(9)[4] and order_weight(9).sum() == 1


def test_split_particles_count_as_duplicates():
    """Particle 0 (six hits) split into two pure tracks: one duplicate, no double-majority match; particle 1 whole."""
    layer, particle_id = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3]), np.array([0] * 6 + [1] * 4)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    m = pooled([tracking_metrics(labels, layer, particle_id, np.array([2.0, 2.0]))])
    assert m["duplicate_rate"] == pytest.approx(1 / 3) and m["efficiency"] == 0.5
    assert m["fake_rate"] == pytest.approx(2 / 3)


def test_region_table_counts_by_hand():
    particles = {"pt": np.array([1.5, 3.0, 7.0, 1.2, 0.8]), "eta_proxy": np.array([0.5, -1.2, 2.2, -0.3, 0.1]),
                 "layers": np.array([10, 6, 4, 9, 10]), "wanted": np.array([True, True, True, True, True]),
                 "gnn": np.array([True, False, True, False, True]), "hough": np.array([True, True, False, True, True])}
    tracks = {"gnn_eta": np.array([0.5, 2.2, 0.2]), "gnn_fake": np.array([False, False, True]),
              "hough_eta": np.array([0.5, -1.2]), "hough_fake": np.array([False, False])}
    report = region_report(particles, tracks, {})
    gnn, hough = report["gnn"], report["hough"]
    assert gnn["eff_eta_0_1"] == 0.5 and hough["eff_eta_0_1"] == 1.0  # the 0.8 GeV particle is not counted
    assert gnn["eff_eta_1_1.5"] == 0.0 and gnn["eff_eta_2_2.5"] == 1.0 and hough["eff_eta_2_2.5"] == 0.0
    assert gnn["eff_pt_1_2"] == 0.5 and gnn["eff_pt_5_inf"] == 1.0 and hough["eff_5_layers"] == 1.0
    assert gnn["fake_eta_0_1"] == 0.5 and np.isnan(hough["fake_eta_2_2.5"]) and hough["fake_eta_1_1.5"] == 0.0


def test_tracks_are_the_connected_components_of_kept_edges():
    senders, receivers = np.array([0, 1, 3, 4, 6]), np.array([1, 2, 4, 5, 7])
    labels = build_tracks(9, senders, receivers, np.array([True, True, True, True, False]), min_hits=3)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, -1, -1, -1]


def test_hough_finds_isolated_tracks():
    particles, hits = event(30, seed=2, smearing=False, scattering=False, efficiency=1.0)
    m = pooled([tracking_metrics(hough_tracks(hits.position, hits.layer), hits.layer, hits.particle_id,
                                 particles.pt)])
    assert m["efficiency"] > 0.9 and m["fake_rate"] < 0.25


def test_hough_threshold_follows_the_layers_a_track_crosses():
    needed = HoughConfig(min_layers=5, max_missing=1).threshold(np.zeros(1), np.array([0.0, 2.0, 10.0]), Detector())
    assert needed.tolist() == [[5, 5, 3]]  # crosses 10, 7 (strips end at |z| 1 m) and 1 layer


def test_hough_finds_forward_tracks_that_leave_the_barrel():
    """Particles at 1.7 < |eta| < 2.4 cross 4-6 layers: a fixed 5-layer threshold misses most of them."""
    rng = np.random.default_rng(4)
    sampled = sample_particles(400, rng, pt_min=1.0)
    forward = np.flatnonzero((np.abs(sampled.eta) > 1.7) & (np.abs(sampled.eta) < 2.4))[:30]
    particles = Particles(sampled.vertex[forward], sampled.momentum[forward], sampled.charge[forward])
    hits = simulate_event(particles, Detector(smearing=False, scattering=False, efficiency=1.0), rng)

    def efficiency(cfg):
        labels = hough_tracks(hits.position, hits.layer, cfg=cfg)
        return pooled([tracking_metrics(labels, hits.layer, hits.particle_id, particles.pt)])["efficiency"]

    assert efficiency(HoughConfig()) > 0.75 and efficiency(HoughConfig(max_missing=-10)) < 0.25  # 0.79 and 0.16


def test_tune_hough_returns_the_best_scoring_configuration():
    events = []
    for seed in (5, 6):
        particles, hits = event(60, seed=seed, noise_per_layer=2)
        events.append(SimpleNamespace(position=hits.position, layer=hits.layer, particle_id=hits.particle_id,
                                      particle_pt=particles.pt))
    best, scored = tune_hough(events, grid={"min_layers": (4, 6), "max_missing": (0, 2)})
    assert len(scored) == 4 and max(score for _, score in scored) == dict(scored)[best]
    rescored = np.mean([tracking_metrics(hough_tracks(e.position, e.layer, cfg=best), e.layer, e.particle_id,
                                         e.particle_pt)["trackml_score"] for e in events])
    assert rescored == pytest.approx(dict(scored)[best])


def test_edge_classifier_is_invariant_to_the_order_of_hits_and_edges():
    particles, hits = event(60, seed=3)
    graph = features(hits.position, build_graph(hits.position, hits.layer, hits.particle_id, 10))
    torch.manual_seed(0)
    model = EdgeClassifier(EdgeClassifierConfig(latent=16, n_steps=2)).eval()
    perm = torch.randperm(graph.nodes.shape[0])
    inverse = torch.argsort(perm)
    edge_perm = torch.randperm(graph.senders.shape[0])
    shuffled = GraphBatch.single(graph.nodes[perm], inverse[graph.senders][edge_perm],
                                 inverse[graph.receivers][edge_perm], edges=graph.edges[edge_perm])
    with torch.no_grad():
        assert torch.allclose(model(shuffled), model(graph)[edge_perm], atol=1e-5)


@pytest.mark.slow
def test_generate_train_and_evaluate_tracking_commands(tmp_path, capsys):
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    assert main(["data", "generate", "tracking", "--out", str(data), "--events", "8", "--particles", "150",
                 "--no-progress"]) == 0
    assert main(["hep", "train-tracking", "--data", str(data), "--run-dir", str(run), "--steps", "120",
                 "--latent", "16", "--message-passing-steps", "2", "--no-progress"]) == 0
    assert main(["hep", "evaluate-tracking", "--run-dir", str(run), "--out", str(out)]) == 0
    report = read_report(out)
    gnn = report["gnn"]
    assert gnn["edge_auc"] > 0.9 and 0 < gnn["efficiency"] <= 1 and "hough" in report
    for picture in ("roc.png", "efficiency.png", "event.png"):
        assert (out / picture).stat().st_size > 0
    assert "TrackML score" in capsys.readouterr().out
    assert main(["hep", "evaluate-tracking", "--run-dir", str(tmp_path / "nothing")]) == 2


def test_events_from_a_foreign_file_through_a_branch_map(tmp_path):
    """Another simulation's tree and branch names, mapped by a YAML data config, give the same events."""
    import awkward as ak
    import uproot

    from hep.tracking.data import generate_tracking
    from hep.tracking.model import load_events

    ours = generate_tracking(tmp_path / "ours", events=2, particles=50, progress=False)[0]
    with uproot.open(ours) as f:
        hits, parts = f["hits"].arrays(library="ak"), f["particles"].arrays(library="ak")
    with uproot.recreate(tmp_path / "foreign.root") as f:
        f.mktree("Hits", {"hit": ak.zip({"gx": hits.x, "gy": hits.y, "gz": hits.z, "lay": hits.layer,
                                           "pid": hits.particle_id})})
        f.mktree("Truth", {"tp": ak.zip({"momx": parts.px, "momy": parts.py})})
    (tmp_path / "map.yaml").write_text(
        "hits:\n  treename: Hits\n  branches: {x: hit_gx, y: hit_gy, z: hit_gz, layer: hit_lay, particle_id: hit_pid}\n"
        "particles:\n  treename: Truth\n  branches: {px: tp_momx, py: tp_momy}\n  new_variables:\n"
        "    pt: np.hypot(px, py)\n")
    a = load_events(ours, 10)
    b = load_events(tmp_path / "foreign.root", 10, data_config=tmp_path / "map.yaml")
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert np.array_equal(x.position, y.position) and np.allclose(x.particle_pt, y.particle_pt)
        assert torch.equal(x.graph.senders, y.graph.senders) and torch.equal(x.y, y.y)
    (tmp_path / "bad.yaml").write_text("hits: {treename: Hits, branches: [x]}\n")
    with pytest.raises(ValueError, match="needs 'hits' and 'particles'"):
        load_events(ours, 10, data_config=tmp_path / "bad.yaml")


@pytest.mark.parametrize("change, message", [
    (lambda h: {**h, "x": ak_where_first(h["x"], np.nan)}, "hit coordinate 'x' .* NaN"),
    (lambda h: {**h, "layer": h["layer"] * 1.0}, "stored as float64, expected integers"),
    (lambda h: {**h, "layer": h["layer"] + 20}, "the detector has layers 0..9"),
])
def test_broken_hits_are_refused_by_file_and_branch(tmp_path, change, message):
    import awkward as ak
    import uproot

    from hep.tracking.data import generate_tracking
    from hep.tracking.model import load_events

    ours = generate_tracking(tmp_path / "ours", events=2, particles=30, progress=False)[0]
    with uproot.open(ours) as f:
        hits, parts = f["hits"].arrays(library="ak"), f["particles"].arrays(library="ak")
    fields = change({k: hits[k] for k in hits.fields if not k.startswith("n")})
    with uproot.recreate(tmp_path / "broken.root") as f:
        f.mktree("hits", {"hit": ak.zip({k: v for k, v in fields.items()})})
        f.mktree("particles", {"p": ak.zip({"px": parts.px, "py": parts.py})})
    (tmp_path / "map.yaml").write_text(
        "hits:\n  treename: hits\n  branches: {x: hit_x, y: hit_y, z: hit_z, layer: hit_layer, "
        "particle_id: hit_particle_id}\nparticles:\n  treename: particles\n  branches: {px: p_px, py: p_py}\n"
        "  new_variables:\n    pt: np.hypot(px, py)\n")
    with pytest.raises(ValueError, match=message) as err:
        load_events(tmp_path / "broken.root", len(Detector().layers), data_config=tmp_path / "map.yaml")
    assert "broken.root" in str(err.value)


def ak_where_first(values, replacement):
    """``values`` (jagged) with its very first entry replaced."""
    import awkward as ak

    flat = ak.to_numpy(ak.flatten(values)).astype(np.float64)
    flat[0] = replacement
    return ak.unflatten(flat, ak.num(values))
