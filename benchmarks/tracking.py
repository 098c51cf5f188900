"""Tracking throughput: events per second of each stage, and the ROOT loader's overhead over uproot.

For events of the TrackML-like barrel at a given pile-up (mean particles per event), times the detector
simulation, graph building (binary search per layer pair) against a brute-force all-pairs version of the same
cuts, GNN inference (default edge classifier, untrained: the cost does not depend on the weights), track
building, and the Hough baseline. Then writes events to ROOT and reads them back with
``datasets.root.iterate`` (data config, derived variable, chunked) and with ``uproot.iterate`` alone.

    tracking: <stage> ours X s/event, reference Y s/event, ratio Y/X

Usage: python benchmarks/tracking.py [--particles 100 1000] [--events 5]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import uproot

from datasets.root import DataConfig, iterate
from hep.tracking.data import generate_tracking
from hep.tracking.detector import Detector, sample_particles, simulate_event
from hep.tracking.graph import GraphCuts, _wrap, build_graph, features
from hep.tracking.hough import hough_tracks
from hep.tracking.model import EdgeClassifier, EdgeClassifierConfig
from hep.tracking.tracks import build_tracks


def brute_force_graph(position: np.ndarray, layer: np.ndarray, cuts: GraphCuts) -> int:
    """All pairs of hits on layer pairs, then the same cuts: the naive reference."""
    r, phi, z = np.hypot(position[:, 0], position[:, 1]), np.arctan2(position[:, 1], position[:, 0]), position[:, 2]
    kept = 0
    for a in range(int(layer.max())):
        for b in range(a + 1, min(a + cuts.max_skip, int(layer.max())) + 1):
            i, j = np.nonzero(layer == a)[0], np.nonzero(layer == b)[0]
            s, t = np.repeat(i, len(j)), np.tile(j, len(i))
            dr = r[t] - r[s]
            keep = (np.abs(_wrap(phi[t] - phi[s])) / dr < cuts.phi_slope_max) & \
                (np.abs(z[s] - r[s] * (z[t] - z[s]) / dr) < cuts.z0_max)
            kept += int(keep.sum())
    return kept


def per_event(fn, inputs) -> float:
    start = time.perf_counter()
    for item in inputs:
        fn(*item)
    return (time.perf_counter() - start) / len(inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--particles", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--events", type=int, default=5)
    args = parser.parse_args()
    detector, cuts = Detector(), GraphCuts()
    torch.manual_seed(0)
    model = EdgeClassifier(EdgeClassifierConfig()).eval()
    for n in args.particles:
        rng = np.random.default_rng(0)
        particles = [sample_particles(n, rng) for _ in range(args.events)]
        simulate_event(particles[0], detector, rng)  # compile
        sim = per_event(lambda p: simulate_event(p, detector, rng), [(p,) for p in particles])
        hits = [simulate_event(p, detector, rng) for p in particles]
        inputs = [(h.position, h.layer, h.particle_id, len(detector.layers), cuts) for h in hits]
        ours = per_event(build_graph, inputs)
        naive = per_event(lambda pos, lay, *_: brute_force_graph(pos, lay, cuts), inputs)
        print(f"tracking: graph building, {n} particles ({np.mean([len(h.layer) for h in hits]):.0f} hits): ours "
              f"{ours:.4f} s/event, reference {naive:.4f} s/event, ratio {naive / ours:.3g}", flush=True)
        graphs = [build_graph(*i) for i in inputs]
        batches = [features(h.position, g) for h, g in zip(hits, graphs)]
        with torch.no_grad():
            infer = per_event(model, [(b,) for b in batches])
        build = per_event(lambda h, g: build_tracks(len(h.layer), g.senders, g.receivers, g.y),
                          list(zip(hits, graphs)))
        gnn = ours + infer + build
        hough = per_event(hough_tracks, [(h.position, h.layer) for h in hits])
        print(f"tracking: simulation {sim:.4f} s/event; GNN pipeline (graph {ours:.4f} + inference {infer:.4f} + "
              f"tracks {build:.4f}) ours {gnn:.4f} s/event, reference Hough {hough:.4f} s/event, ratio "
              f"{hough / gnn:.3g}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = generate_tracking(tmp, events=200, particles=1000, progress=False)[0]
        size_mb = Path(path).stat().st_size / 1e6
        config = DataConfig.from_dict({"treename": "hits", "branches": ["x", "y", "z", "layer", "particle_id"],
                                       "new_variables": {"r": "np.hypot(x, y)"}})
        start = time.perf_counter()
        n_events = sum(len(c) for c in iterate(path, config, step_size=50, progress=False))
        ours = time.perf_counter() - start
        start = time.perf_counter()
        for chunk in uproot.iterate({str(path): "hits"}, ["x", "y", "z", "layer", "particle_id"], step_size=50):
            np.hypot(chunk["x"], chunk["y"])
        plain = time.perf_counter() - start
        print(f"tracking: ROOT read ({size_mb:.1f} MB, {n_events} events): ours {ours:.3f} s "
              f"({size_mb / ours:.0f} MB/s, "
              f"{n_events / ours:.0f} events/s), reference uproot.iterate {plain:.3f} s, ratio {plain / ours:.3g}",
              flush=True)


if __name__ == "__main__":
    main()
