"""``physml hep reconstruct``: track ids per hit, entry-aligned with the input events, equal to the evaluator's
own track building; the shipped tracker reproduces its card on the card's events; truth is never needed."""
import json

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

from datasets.root import RootWriter
from hep.tracking.data import generate_tracking
from hep.tracking.detector import Detector
from hep.tracking.evaluate import edge_scores
from hep.tracking.model import TrackingRun, build_model, load_events
from hep.tracking.reconstruct import SHIPPED, reconstruct
from hep.tracking.tracks import build_tracks, pooled, tracking_metrics
from physml.cli import main
from training.checkpoint import save_best
from training.config import to_dict
from training.report import read_report


def tiny_run(run_dir):
    torch.manual_seed(0)
    run = TrackingRun()
    save_best(run_dir, {"model": build_model(run).state_dict()})
    (run_dir / "config.json").write_text(json.dumps({"recipe": "tracking", "run": to_dict(run)}))
    return run_dir


def read_tracks(path):
    return uproot.open(path)["tracks"].arrays(library="ak")


def test_reconstruct_equals_the_evaluators_track_building_and_needs_no_truth(tmp_path):
    generate_tracking(tmp_path / "data", seed=3, events=4, particles=60, progress=False)
    run = tiny_run(tmp_path / "run")
    out = reconstruct(str(tmp_path / "data" / "test.root"), out=str(tmp_path / "tracks.root"), model=str(run),
                      threshold=0.5, device="cpu")
    events = load_events(tmp_path / "data" / "test.root", len(Detector().layers))
    tracks = read_tracks(out)
    assert len(tracks) == len(events)
    model = build_model(TrackingRun())
    model.load_state_dict(torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"])
    for event, scores, got in zip(events, edge_scores(model.eval(), events), tracks):
        expected = build_tracks(len(event.layer), event.graph.senders.numpy(), event.graph.receivers.numpy(),
                                scores > 0.5)
        assert np.array_equal(np.asarray(got["track_id"]), expected)
        assert got["ntracks"] == expected.max(initial=-1) + 1
    # the same hits without any truth branch, in a tree of another name: same tracks
    hits = uproot.open(tmp_path / "data" / "test.root")["hits"].arrays(["x", "y", "z", "layer"])
    with RootWriter(tmp_path / "bare.root") as f:
        f.extend("hits", {"hit": ak.zip({k: hits[k] for k in ("x", "y", "z", "layer")})})
    config = tmp_path / "bare.yaml"
    config.write_text("hits: {treename: hits, branches: {x: hit_x, y: hit_y, z: hit_z, layer: hit_layer}}\n"
                      "particles: {treename: hits, branches: {px: hit_x}}\n")
    bare = reconstruct(str(tmp_path / "bare.root"), out=str(tmp_path / "bare_tracks.root"), model=str(run),
                       threshold=0.5, data_config=str(config), device="cpu")
    assert ak.all(read_tracks(bare)["track_id"] == tracks["track_id"])


def test_reconstruct_refuses_bad_input_without_a_partial_file(tmp_path):
    generate_tracking(tmp_path / "data", seed=3, events=2, particles=30, progress=False)
    run = tiny_run(tmp_path / "run")
    out = tmp_path / "tracks.root"
    with pytest.raises(ValueError, match="threshold"):
        reconstruct(str(tmp_path / "data" / "test.root"), out=str(out), model=str(run), device="cpu")
    with pytest.raises(ValueError, match="threshold must"):
        reconstruct(str(tmp_path / "data" / "test.root"), out=str(out), model=str(run), threshold=1.5, device="cpu")
    assert main(["hep", "reconstruct", str(tmp_path / "nothing.root"), "--model", str(run), "--threshold", "0.5",
                 "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.slow
def test_shipped_tracker_reproduces_its_card(tmp_path):
    card = SHIPPED["tracking"]
    generate_tracking(tmp_path / "data", **card.check["generate"], progress=False)
    out = reconstruct(str(tmp_path / "data" / "test.root"), out=str(tmp_path / "tracks.root"), pretrained="tracking",
                      device="cpu")
    events = load_events(tmp_path / "data" / "test.root", len(Detector().layers))
    rows = [tracking_metrics(np.asarray(t), e.layer, e.particle_id, e.particle_pt)
            for t, e in zip(read_tracks(out)["track_id"], events)]
    metrics = pooled(rows)
    for key in ("efficiency", "trackml_score"):
        assert abs(metrics[key] - card.metrics[key]) <= card.check["tolerance"], (key, metrics[key], card.metrics)
    # the evaluator on the same events (threshold tuned on their validation events) says the same
    assert main(["hep", "evaluate-tracking", "--pretrained", "tracking", "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "eval")]) == 0
    report = read_report(tmp_path / "eval")
    assert abs(report["gnn"]["threshold"] - card.metrics["threshold"]) < 1e-9
    assert abs(report["gnn"]["efficiency"] - card.metrics["efficiency"]) <= card.check["tolerance"]
