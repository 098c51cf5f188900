"""``physml hep evaluate tracking``: the GNN pipeline and the Hough transform on the same events.

Both methods are tuned on the same validation events: the GNN's edge threshold by best edge F1 over a grid,
the Hough transform's thresholds and z0 slicing by best TrackML score (``hough.tune_hough``). On the test
events it reports edge ROC AUC, edge efficiency and purity, tracking efficiency, fake and duplicate rates and
the TrackML score of both methods, seconds per event of each stage; per region (``regions/table.md``) the
efficiency in bins of |eta| and pT and for particles with hits on >= 5 layers, and the fake rate in bins of
the track's |eta|; and pictures: ROC curve, efficiency against pT and eta, and an event display (x-y and r-z,
true tracks against GNN tracks). The detector is a barrel: a particle beyond |eta| ~ 1 leaves it before the
outer layers (``ACCEPTANCE``).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from datasets.atomic import refuse_overwriting_inputs
from hep.classification import roc_auc
from hep.tracking import plots
from hep.tracking.detector import Detector
from hep.tracking.graph import HitGraph, efficiency_purity
from hep.tracking.hough import hough_tracks, tune_hough
from hep.tracking.model import RECIPE, Event, load_events
from hep.tracking.reconstruct import SHIPPED
from hep.tracking.tracks import build_tracks, match_tracks, matched_particles, pooled, reconstructable, \
    tracking_metrics
from training.inference import inference_device
from training.pretrained import evaluation_target
from training.recipe import load
from training.report import Column, Report

COLUMNS = [Column("graph_efficiency", "graph eff."), Column("graph_purity", "graph purity"),
           Column("efficiency", "tracking eff. (pT > 1 GeV)"), Column("fake_rate", "fake rate"),
           Column("duplicate_rate", "duplicate rate"), Column("trackml_score", "TrackML score"),
           Column("edge_auc", "edge AUC"), Column("edge_efficiency", "edge eff."),
           Column("edge_purity", "edge purity"), Column("seconds_per_event", "time per event", "s")]

ACCEPTANCE = ("barrel only: from a vertex at z = 0 all ten layers are crossed for |eta| < 0.86, the first strip "
              "layer to |eta| 2.1, the pixels to 3.4")
ETA_BINS = (0.0, 1.0, 1.5, 2.0, 2.5)   # |eta| bin edges of the region table
PT_BINS = (1.0, 2.0, 5.0, np.inf)      # GeV
METHODS = {"gnn": "GNN (interaction network)", "hough": "Hough transform (tuned)"}


@torch.no_grad()
def edge_scores(model: torch.nn.Module, events: list[Event]) -> list[np.ndarray]:
    """Edge probabilities of each event's graph, on the model's device."""
    device = next(model.parameters()).device
    return [torch.sigmoid(model(e.graph.to(device))).cpu().numpy() for e in events]


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
             events: int | None = None, data_config: str | None = None, device: str = "auto",
             pretrained: str | None = None) -> Report:
    """Score the GNN tracker and the Hough transform on ``test.root`` (edge threshold chosen on
    ``valid.root``); table.md, metrics.json and pictures go to ``out``.

    Args:
        run_dir: the ``train tracking`` run folder.
        data: folder with valid.root and test.root (default: the run's data).
        out: output folder (default: RUN_DIR/eval).
        events: use only the first events of each file.
        data_config: YAML branch map (default: the training run's).
        device: where the GNN runs: auto (CUDA when present), cpu, cuda or cuda:N.
        pretrained: score a shipped tracker instead of ``run_dir`` (``physml models list``; needs ``data``).
    """
    if pretrained is not None:
        run_dir, out = evaluation_target(pretrained, SHIPPED, data, out)
    model, run = load(run_dir, [RECIPE], device=str(inference_device(device)))
    folder = Path(data or run.data_dir)
    out_dir = Path(out or Path(run_dir) / "eval")
    refuse_overwriting_inputs(out_dir, [folder])
    test_file, data_config, max_events = folder / "test.root", data_config or run.data_config, events
    cuts, n_layers = run.cuts, len(Detector().layers)
    valid = load_events(folder / "valid.root", n_layers, cuts, max_events, data_config)
    threshold = choose_threshold(edge_scores(model, valid), valid)
    hough_cfg, hough_scores = tune_hough(valid)
    test_events, graph_seconds = _timed(load_events, test_file, n_layers, cuts, max_events, data_config)
    scores, infer_seconds = _timed(edge_scores, model, test_events)
    rows: dict[str, list[dict]] = {method: [] for method in METHODS}
    particles: dict[str, list[np.ndarray]] = {k: [] for k in ("pt", "eta_proxy", "layers", "wanted", *METHODS)}
    tracks: dict[str, list[np.ndarray]] = {f"{m}_{k}": [] for m in METHODS for k in ("eta", "fake")}
    build_seconds = hough_seconds = 0.0
    gnn_labels = []
    for event, s in zip(test_events, scores):
        n_hits, n_particles = len(event.layer), len(event.particle_pt)
        senders, receivers = event.graph.senders.numpy(), event.graph.receivers.numpy()
        labels, dt = _timed(build_tracks, n_hits, senders, receivers, s > threshold)
        build_seconds += dt
        hough, dt = _timed(hough_tracks, event.position, event.layer, Detector(), hough_cfg)
        hough_seconds += dt
        gnn_labels.append(labels)
        particles["pt"].append(event.particle_pt)
        particles["eta_proxy"].append(_outermost_eta(event, event.particle_id, n_particles))
        particles["layers"].append(_particle_layers(event, n_particles))
        particles["wanted"].append(reconstructable(event.particle_id, event.particle_pt, pt_min=0.0))
        for method, method_labels in (("gnn", labels), ("hough", hough)):
            rows[method].append(tracking_metrics(method_labels, event.layer, event.particle_id, event.particle_pt))
            particles[method].append(matched_particles(method_labels, event.particle_id, n_particles))
            tracks[f"{method}_eta"].append(_outermost_eta(event, method_labels, int(method_labels.max(initial=-1)) + 1))
            tracks[f"{method}_fake"].append(~match_tracks(method_labels, event.particle_id)[2])
    y = np.concatenate([e.y.numpy() for e in test_events]).astype(bool)
    s = np.concatenate(scores)
    graph_quality = np.array([graph_efficiency_purity(e) for e in test_events])
    n = len(test_events)
    mean_hits = float(np.mean([len(e.layer) for e in test_events]))
    report = Report(f"GNN tracking and Hough transform on {test_file}", COLUMNS,
                    info={"run_dir": str(run_dir), "test_file": str(test_file), "events": n,
                          "mean_hits_per_event": mean_hits, "out": str(out_dir)})
    kept = s > threshold
    report.add("gnn", METHODS["gnn"], {
        **pooled(rows["gnn"]), "edge_auc": roc_auc(y, s), "threshold": threshold,
        "edge_efficiency": float(np.sum(kept & y) / max(y.sum(), 1)),
        "edge_purity": float(np.sum(kept & y) / max(kept.sum(), 1)),
        "graph_efficiency": float(graph_quality[:, 0].mean()), "graph_purity": float(graph_quality[:, 1].mean()),
        "seconds_per_event": (graph_seconds + infer_seconds + build_seconds) / n,
        "seconds_read_and_graph": graph_seconds / n, "seconds_inference": infer_seconds / n,
        "seconds_track_building": build_seconds / n})
    report.add("hough", METHODS["hough"], {**pooled(rows["hough"]), "seconds_per_event": hough_seconds / n,
                                           "min_layers": hough_cfg.min_layers, "max_missing": hough_cfg.max_missing,
                                           "z0_step_mm": hough_cfg.z0_step})
    report.extra["hough_tuning"] = [{**dataclasses.asdict(cfg), "valid_trackml_score": score}
                                    for cfg, score in hough_scores]
    flat = {k: np.concatenate(v) for k, v in particles.items()}
    region_report(flat, {k: np.concatenate(v) for k, v in tracks.items()}, report.info).write(out_dir / "regions")
    plots.roc(out_dir / "roc.png", y, s)
    plots.efficiency_curves(out_dir / "efficiency.png", flat)
    plots.event_display(out_dir / "event.png", test_events[0], gnn_labels[0])
    report.write(out_dir)
    return report


def region_report(particles: dict[str, np.ndarray], tracks: dict[str, np.ndarray], info: dict) -> Report:
    """Efficiency of reconstructable pT > 1 GeV particles per |eta| bin, per pT bin and for those with hits on
    >= 5 layers; fake rate per bin of the track's |eta|; one row per method.

    Args:
        particles: per particle ``pt``, ``eta_proxy``, ``layers`` (distinct layers hit), ``wanted`` (>= 3 hits)
            and, per method, whether a track double-matches it.
        tracks: per method ``{method}_eta`` and ``{method}_fake`` for every track.
        info: the main report's info, copied.
    """
    eta, pt = np.abs(particles["eta_proxy"]), particles["pt"]
    wanted = particles["wanted"] & (pt > PT_BINS[0])
    eta_bins, pt_bins = list(zip(ETA_BINS, ETA_BINS[1:])), list(zip(PT_BINS, PT_BINS[1:]))
    selections = {(f"eff_eta_{lo:g}_{hi:g}", f"eff. |eta| {lo:g}-{hi:g}"): wanted & (eta >= lo) & (eta < hi)
                  for lo, hi in eta_bins}
    selections |= {(f"eff_pt_{lo:g}_{hi:g}", f"eff. pT {lo:g}-{hi:g} GeV"): wanted & (pt >= lo) & (pt < hi)
                   for lo, hi in pt_bins}
    selections[("eff_5_layers", "eff. (>= 5 layers)")] = wanted & (particles["layers"] >= 5)
    columns = [Column(key, title) for key, title in selections]
    columns += [Column(f"fake_eta_{lo:g}_{hi:g}", f"fake rate, track |eta| {lo:g}-{hi:g}") for lo, hi in eta_bins]
    report = Report("Tracking per region (reconstructable particles of pT > 1 GeV; " + ACCEPTANCE + ")", columns,
                    info={**info, "particles": {key: int(sel.sum()) for (key, _), sel in selections.items()}})
    for method, label in METHODS.items():
        values = {key: float(particles[method][sel].mean()) if sel.any() else float("nan")
                  for (key, _), sel in selections.items()}
        track_eta = np.abs(tracks[f"{method}_eta"])
        for lo, hi in eta_bins:
            in_bin = (track_eta >= lo) & (track_eta < hi)
            values[f"fake_eta_{lo:g}_{hi:g}"] = float(tracks[f"{method}_fake"][in_bin].mean()) if in_bin.any() \
                else float("nan")
        report.add(method, label, values)
    return report


def graph_efficiency_purity(event: Event, pt_min: float = 1.0) -> tuple[float, float]:
    """Of the candidate graph (before the classifier): true segments of pT > pt_min particles kept, and the
    fraction of edges that are true (DeZoort et al.'s definitions)."""
    senders, receivers = event.graph.senders.numpy(), event.graph.receivers.numpy()
    graph = HitGraph(senders, receivers, event.y.numpy().astype(bool))
    return efficiency_purity(graph, event.layer, event.particle_id, event.particle_pt > pt_min)


def _particle_layers(event: Event, n_particles: int) -> np.ndarray:
    """Distinct layers each particle left hits on."""
    real = event.particle_id >= 0
    pairs = np.unique(np.column_stack([event.particle_id[real], event.layer[real]]), axis=0)
    return np.bincount(pairs[:, 0], minlength=n_particles)


def _outermost_eta(event: Event, owner: np.ndarray, count: int) -> np.ndarray:
    """Eta, seen from the beam line, of the outermost hit of each of ``count`` owners (particles or tracks:
    ``owner`` is each hit's particle id or track label, ``-1`` for none); NaN for owners without hits. The
    files carry each particle's pT only, so its eta comes from its hits too."""
    eta = np.full(count, np.nan)
    on = np.flatnonzero(owner >= 0)
    r = np.hypot(event.position[on, 0], event.position[on, 1])
    order = np.argsort(r)
    eta[owner[on][order]] = np.arcsinh(event.position[on, 2] / r)[order]  # the outermost hit writes last
    return eta
