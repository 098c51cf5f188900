"""``physml hep reconstruct``: tracks for the hits of any barrel-tracker ROOT file, with a trained GNN.

Per event: the candidate graph of the hits (the run's cuts), edge scores from the edge classifier, the edges
above the threshold, and their connected components of at least 3 hits as tracks (as ``evaluate tracking``
builds them). Written to a ``tracks`` tree with one entry per input event, entry-aligned with the hits tree:
jagged ``track_id`` per hit in input order (-1: on no track), and ``ntracks``. The hits need only x, y, z
and layer (``--data-config`` maps other branch names); truth is not read.
"""
from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import torch
from tqdm.auto import tqdm

from datasets.atomic import refuse_overwriting_inputs
from datasets.root import DataConfig, RootWriter, iterate
from hep.tracking.detector import Detector
from hep.tracking.graph import build_graph, features
from hep.tracking.model import RECIPE, check_hits, data_configs
from hep.tracking.tracks import build_tracks
from training.inference import inference_device
from training.pretrained import Card, cards, resolve
from training.recipe import load

SHIPPED: dict[str, Card] = cards(Path(__file__).with_name("pretrained"))


def edge_threshold(run_dir: Path, shipped: Card | None) -> float:
    """The edge threshold chosen on validation events: the card's, or the one ``evaluate tracking`` wrote to
    ``RUN/eval/metrics.json``."""
    if shipped is not None:
        return float(shipped.metrics["threshold"])
    path = run_dir / "eval" / "metrics.json"
    try:
        return float(json.loads(path.read_text())["gnn"]["threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: no tuned edge threshold; run `physml hep evaluate-tracking --run-dir {run_dir}` "
                         "first or give --threshold") from None


def reconstruct(events: str, out: str = "tracks.root", model: str | None = None, pretrained: str | None = None,
                threshold: float | None = None, data_config: str | None = None, device: str = "auto") -> Path:
    """Reconstruct the tracks of every event of a ROOT file with a trained GNN tracker; write the track id of
    every hit (tree ``tracks``: jagged track_id, -1 for hits on no track, and ntracks; one entry per event).

    Args:
        events: ROOT file with a hits tree (one entry per event; see ``--data-config``).
        out: the tracks file (written atomically).
        model: a ``train tracking`` run folder.
        pretrained: a shipped tracker instead (``physml models list``).
        threshold: edge-score threshold (default: the one tuned on validation events, from the card or the
            run's ``eval/metrics.json``).
        data_config: YAML branch map of the hits (default: the run's, else ``hep/tracking/events.yaml``).
        device: auto (CUDA when present), cpu, cuda or cuda:N.
    """
    refuse_overwriting_inputs(out, [events])
    run_dir = resolve(model, pretrained, SHIPPED)
    dev = inference_device(device)
    network, run = load(run_dir, [RECIPE], device=str(dev))
    if threshold is None:
        threshold = edge_threshold(run_dir, SHIPPED.get(pretrained) if pretrained else None)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    hits_config = data_configs(data_config or run.data_config)[0]
    hits_config = DataConfig(hits_config.treename, {k: v for k, v in hits_config.branches.items()
                                                    if k in ("x", "y", "z", "layer")})  # no truth needed
    n_layers = len(Detector().layers)
    with RootWriter(out) as writer, tqdm(desc="reconstruct", unit="event") as bar:
        for chunk in iterate(events, hits_config, progress=False):
            check_hits(events, chunk, hits_config, n_layers)
            labels = [track_ids(network, event, run.cuts, n_layers, threshold, dev) for event in chunk]
            writer.extend("tracks", {"track_id": ak.Array(labels), "ntracks": np.array(
                [int(t.max(initial=-1)) + 1 for t in labels], dtype=np.int32)}, counter="nhits")
            bar.update(len(chunk))
    return Path(out)


@torch.no_grad()
def track_ids(network: torch.nn.Module, event, cuts, n_layers: int, threshold: float,
              device: torch.device) -> np.ndarray:
    """Track id per hit of one event (``-1``: no track), int32 ``[H]``."""
    position = np.column_stack([np.asarray(event[k], dtype=np.float64) for k in ("x", "y", "z")])
    layer = np.asarray(event["layer"], dtype=np.int64)
    graph = build_graph(position, layer, np.full(len(layer), -1), n_layers, cuts)
    scores = torch.sigmoid(network(features(position, graph).to(device))).cpu().numpy()
    return build_tracks(len(layer), graph.senders, graph.receivers, scores > threshold).astype(np.int32)
