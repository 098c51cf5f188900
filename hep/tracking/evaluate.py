"""``physml hep evaluate tracking``: the GNN pipeline and the Hough transform on the same events.

The edge threshold is chosen on the validation events (best F1 over a grid); on the test events it reports
edge ROC AUC, edge efficiency and purity, tracking efficiency, fake and duplicate rates and the TrackML score
of both methods, seconds per event of each stage, and pictures: ROC curve, efficiency against pT and eta,
and an event display (x-y and r-z, true tracks against GNN tracks).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from datasets.atomic import refuse_overwriting_inputs
from hep.classification import roc_auc
from hep.tracking import plots
from hep.tracking.detector import Detector
from hep.tracking.graph import HitGraph, efficiency_purity
from hep.tracking.hough import hough_tracks
from hep.tracking.model import RECIPE, Event, load_events
from hep.tracking.tracks import build_tracks, matched_particles, pooled, reconstructable, tracking_metrics
from training.recipe import load
from training.report import Column, Report

COLUMNS = [Column("graph_efficiency", "graph eff."), Column("graph_purity", "graph purity"),
           Column("efficiency", "tracking eff. (pT > 1 GeV)"), Column("fake_rate", "fake rate"),
           Column("duplicate_rate", "duplicate rate"), Column("trackml_score", "TrackML score"),
           Column("edge_auc", "edge AUC"), Column("edge_efficiency", "edge eff."),
           Column("edge_purity", "edge purity"), Column("seconds_per_event", "time per event", "s")]


@torch.no_grad()
def edge_scores(model: torch.nn.Module, events: list[Event]) -> list[np.ndarray]:
    return [torch.sigmoid(model(e.graph)).numpy() for e in events]


def choose_threshold(scores: list[np.ndarray], events: list[Event]) -> float:
    """The edge threshold with the best F1 on the given (validation) events."""
    s = np.concatenate(scores)
    y = np.concatenate([e.y.numpy() for e in events]).astype(bool)
    grid = np.linspace(0.05, 0.95, 91)
    f1 = [2 * (tp := np.sum((s > t) & y)) / max(2 * tp + np.sum((s > t) & ~y) + np.sum((s <= t) & y), 1)
          for t in grid]
    return float(grid[int(np.argmax(f1))])


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def evaluate(run_dir: str = "runs/tracking", data: str | None = None, out: str | None = None,
             events: int | None = None, data_config: str | None = None) -> Report:
    """Score the GNN tracker and the Hough transform on ``test.root`` (edge threshold chosen on
    ``valid.root``); table.md, metrics.json and pictures go to ``out``.

    Args:
        run_dir: the ``train tracking`` run folder.
        data: folder with valid.root and test.root (default: the run's data).
        out: output folder (default: RUN_DIR/eval).
        events: use only the first events of each file.
        data_config: YAML branch map (default: the training run's).
    """
    model, run = load(run_dir, [RECIPE])
    folder = Path(data or run.data_dir)
    out_dir = Path(out or Path(run_dir) / "eval")
    refuse_overwriting_inputs(out_dir, [folder])
    test_file, data_config, max_events = folder / "test.root", data_config or run.data_config, events
    cuts, n_layers = run.cuts, len(Detector().layers)
    valid = load_events(folder / "valid.root", n_layers, cuts, max_events, data_config)
    threshold = choose_threshold(edge_scores(model, valid), valid)
    test_events, graph_seconds = _timed(load_events, test_file, n_layers, cuts, max_events, data_config)
    scores, infer_seconds = _timed(edge_scores, model, test_events)
    gnn_rows, hough_rows, per_particle = [], [], {"pt": [], "eta_proxy": [], "gnn": [], "hough": [], "wanted": []}
    build_seconds = hough_seconds = 0.0
    gnn_labels = []
    for event, s in zip(test_events, scores):
        n_hits = len(event.layer)
        senders, receivers = event.graph.senders.numpy(), event.graph.receivers.numpy()
        labels, dt = _timed(build_tracks, n_hits, senders, receivers, s > threshold)
        build_seconds += dt
        hough, dt = _timed(hough_tracks, event.position, event.layer)
        hough_seconds += dt
        gnn_labels.append(labels)
        gnn_rows.append(tracking_metrics(labels, event.layer, event.particle_id, event.particle_pt))
        hough_rows.append(tracking_metrics(hough, event.layer, event.particle_id, event.particle_pt))
        n_particles = len(event.particle_pt)
        per_particle["pt"].append(event.particle_pt)
        per_particle["eta_proxy"].append(_particle_eta(event, n_particles))
        per_particle["gnn"].append(matched_particles(labels, event.particle_id, n_particles))
        per_particle["hough"].append(matched_particles(hough, event.particle_id, n_particles))
        per_particle["wanted"].append(reconstructable(event.particle_id, event.particle_pt, pt_min=0.0))
    y = np.concatenate([e.y.numpy() for e in test_events]).astype(bool)
    s = np.concatenate(scores)
    graph_quality = np.array([graph_efficiency_purity(e) for e in test_events])
    n = len(test_events)
    mean_hits = float(np.mean([len(e.layer) for e in test_events]))
    report = Report(f"GNN tracking and Hough transform on {test_file}", COLUMNS,
                    info={"run_dir": str(run_dir), "test_file": str(test_file), "events": n,
                          "mean_hits_per_event": mean_hits, "out": str(out_dir)})
    kept = s > threshold
    report.add("gnn", "GNN (interaction network)", {
        **pooled(gnn_rows), "edge_auc": roc_auc(y, s), "threshold": threshold,
        "edge_efficiency": float(np.sum(kept & y) / max(y.sum(), 1)),
        "edge_purity": float(np.sum(kept & y) / max(kept.sum(), 1)),
        "graph_efficiency": float(graph_quality[:, 0].mean()), "graph_purity": float(graph_quality[:, 1].mean()),
        "seconds_per_event": (graph_seconds + infer_seconds + build_seconds) / n,
        "seconds_read_and_graph": graph_seconds / n, "seconds_inference": infer_seconds / n,
        "seconds_track_building": build_seconds / n})
    report.add("hough", "Hough transform", {**pooled(hough_rows), "seconds_per_event": hough_seconds / n})
    flat = {k: np.concatenate(v) for k, v in per_particle.items()}
    plots.roc(out_dir / "roc.png", y, s)
    plots.efficiency_curves(out_dir / "efficiency.png", flat)
    plots.event_display(out_dir / "event.png", test_events[0], gnn_labels[0])
    report.write(out_dir)
    return report


def graph_efficiency_purity(event: Event, pt_min: float = 1.0) -> tuple[float, float]:
    """Of the candidate graph (before the classifier): true segments of pT > pt_min particles kept, and the
    fraction of edges that are true (DeZoort et al.'s definitions)."""
    senders, receivers = event.graph.senders.numpy(), event.graph.receivers.numpy()
    graph = HitGraph(senders, receivers, event.y.numpy().astype(bool))
    return efficiency_purity(graph, event.layer, event.particle_id, event.particle_pt > pt_min)


def _particle_eta(event: Event, n_particles: int) -> np.ndarray:
    """Each particle's eta from its outermost hit seen from the beam line (the file carries pT only)."""
    eta = np.full(n_particles, np.nan)
    real = event.particle_id >= 0
    r = np.hypot(event.position[real, 0], event.position[real, 1])
    values = np.arcsinh(event.position[real, 2] / r)
    order = np.argsort(r)
    eta[event.particle_id[real][order]] = values[order]  # the outermost hit writes last
    return eta
