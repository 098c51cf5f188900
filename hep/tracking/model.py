"""The GNN edge classifier: an interaction network (DeZoort et al. 2021) on the shared graph core.

Hits and candidate edges are encoded to a latent width, then ``n_steps`` interaction-network rounds update
edges from their two hits and hits from their incident edges, in both directions (each edge also carries a
message from its outer hit to its inner one), with residual connections; a final edge MLP gives one logit per
edge. The default (latent 32, 3 rounds) has 28k parameters; DeZoort's has 6.5k (``latent = 8, n_steps = 1``
here gives 1k).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from datasets.root import DataConfig, read
from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from hep.tracking.detector import Detector
from hep.tracking.graph import GraphCuts, build_graph, features
from training import TrainerConfig
from training.recipe import Built, Recipe

DEFAULT_DATA_CONFIG = Path(__file__).with_name("events.yaml")


def data_configs(path: str | Path | None = None) -> tuple[DataConfig, DataConfig]:
    """The ``hits`` and ``particles`` data configs of a tracking branch map (``events.yaml`` by default)."""
    path = Path(path or DEFAULT_DATA_CONFIG)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data config")
    with open(path) as fh:
        raw = yaml.safe_load(fh)
    if not isinstance(raw, dict) or not {"hits", "particles"} <= set(raw):
        raise ValueError(f"{path}: a tracking data config needs 'hits' and 'particles' sections")
    return DataConfig.from_dict(raw["hits"], f"{path} (hits)"), DataConfig.from_dict(raw["particles"],
                                                                                     f"{path} (particles)")


@dataclass
class EdgeClassifierConfig:
    latent: int = 32               # width of every MLP and latent vector
    n_steps: int = 3               # interaction-network rounds


class EdgeClassifier(nn.Module):
    """``forward(graph) -> logits [E]`` for the graph's (directed, inner-to-outer) edges."""

    def __init__(self, cfg: EdgeClassifierConfig, node_dim: int = 3, edge_dim: int = 4) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = EncodeProcessDecode(EncodeProcessDecodeConfig(
            node_in=node_dim, edge_in=edge_dim, edge_out=1, latent=cfg.latent, hidden_layers=1, n_steps=cfg.n_steps,
            bidirectional=True))

    def forward(self, graph: GraphBatch) -> torch.Tensor:
        return self.net(graph).edges.squeeze(-1)


@dataclass(frozen=True)
class Event:
    """One event's hits, truth and candidate graph."""

    position: np.ndarray
    layer: np.ndarray
    particle_id: np.ndarray
    particle_pt: np.ndarray
    graph: GraphBatch
    y: torch.Tensor


def load_events(path: str | Path, n_layers: int, cuts: GraphCuts = GraphCuts(), limit: int | None = None,
                data_config: str | Path | None = None) -> list[Event]:
    """Events of a tracking ROOT file (ours or any file the data config maps), with their graphs."""
    hits_config, particles_config = data_configs(data_config)
    hits = read(path, hits_config)
    particles = read(path, particles_config)
    check_hits(path, hits, hits_config, n_layers)
    events = []
    for e in range(len(hits) if limit is None else min(limit, len(hits))):
        position = np.column_stack([np.asarray(hits[e][k], dtype=np.float64) for k in ("x", "y", "z")])
        layer, pid = np.asarray(hits[e]["layer"], dtype=np.int64), np.asarray(hits[e]["particle_id"], dtype=np.int64)
        graph = build_graph(position, layer, pid, n_layers, cuts)
        events.append(Event(position, layer, pid, np.asarray(particles[e]["pt"], dtype=np.float64),
                            features(position, graph), torch.from_numpy(graph.y.astype(np.float32))))
    return events


def check_hits(path: str | Path, hits, config: DataConfig, n_layers: int) -> None:
    """Finite hit coordinates, and layer ids stored as integers within the detector's ``n_layers``."""
    def flat(name: str) -> np.ndarray:
        return ak.to_numpy(ak.flatten(hits[name], axis=None))

    for name in ("x", "y", "z"):
        values = flat(name)
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: hit coordinate {name!r} (branch {config.branches.get(name, name)!r}) holds NaN "
                             f"or infinite values")
    layer = flat("layer")
    branch = config.branches.get("layer", "layer")
    if layer.dtype.kind not in "iu":
        raise ValueError(f"{path}: hit layer ids (branch {branch!r}) are stored as {layer.dtype}, expected integers")
    if len(layer) and (layer.min() < 0 or layer.max() >= n_layers):
        raise ValueError(f"{path}: hit layer ids (branch {branch!r}) span {layer.min()}..{layer.max()}, the detector "
                         f"has layers 0..{n_layers - 1}")


class EventGraphs(Dataset):
    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, i: int) -> tuple[GraphBatch, torch.Tensor]:
        return self.events[i].graph, self.events[i].y


def collate(items: list[tuple[GraphBatch, torch.Tensor]]) -> tuple[GraphBatch, torch.Tensor]:
    graphs, labels = zip(*items)
    return GraphBatch.collate(list(graphs)), torch.cat(labels)


def training_loss(model: nn.Module, batch: tuple[GraphBatch, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Binary cross-entropy on every candidate edge; accuracy at 0.5 as a readable companion."""
    graph, y = batch
    logits = model(graph)
    accuracy = float(((logits > 0).float() == y).float().mean()) if len(y) else 1.0
    return F.binary_cross_entropy_with_logits(logits, y), {"accuracy": accuracy}


@dataclass
class TrackingRun:
    """A training run; defaults are the reference configuration of docs/hep.md."""

    data_dir: str = "runs/data/tracking"  # folder with train.root and valid.root (physml data generate tracking)
    data_config: str | None = None        # YAML branch map for ROOT files from elsewhere (None: events.yaml)
    model: EdgeClassifierConfig = field(default_factory=EdgeClassifierConfig)
    cuts: GraphCuts = field(default_factory=GraphCuts)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/tracking", steps=1500, batch_size=2, lr=2e-3, schedule="cosine", lr_final=1e-5,
        log_every=20))


def build_model(run: TrackingRun) -> EdgeClassifier:
    return EdgeClassifier(run.model)


def build(run: TrackingRun) -> Built:
    """Hit graphs of ``train.root``, validation loss on ``valid.root``."""
    n_layers = len(Detector().layers)
    data = Path(run.data_dir)
    train_set = EventGraphs(load_events(data / "train.root", n_layers, run.cuts, data_config=run.data_config))
    valid_set = EventGraphs(load_events(data / "valid.root", n_layers, run.cuts, data_config=run.data_config))
    return Built(build_model(run), train_set, valid_set, collate, training_loss)


RECIPE = Recipe("tracking", "interaction-network edge classifier on tracking events", TrackingRun, build,
                build_model)
