"""A learned force field: per-particle accelerations from one frame of positions, on encode-process-decode.

The smallest useful learned simulator: a graph of particles within the connectivity radius R, edge
features ``(x_i - x_j) / R`` and ``|x_i - x_j| / R`` (translation invariant), node features the
distances to the box walls divided by R and clipped to [-1, 1] (as in GNS), and a target of the finite-
difference acceleration ``x_{t+1} - 2 x_t + x_{t-1}`` normalised by the training statistics. It is judged
against the baseline of predicting the mean acceleration (normalised MSE 1): the score is the fraction of
the acceleration variance it explains on held-out trajectories.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.trajectories import TrajectoryReader, require_metadata
from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from gnn.neighbours import radius_graph
from training import TrainerConfig
from training.figures import pyplot, save_figure
from training.recipe import Built, Recipe


class FrameGraphs(Dataset):
    """Frames of a trajectory file as ``(graph, normalised acceleration [N, D])`` pairs."""

    def __init__(self, path: str | Path, metadata: dict | None = None) -> None:
        with TrajectoryReader(path) as reader:
            self.metadata = metadata or reader.metadata
            require_metadata(path, self.metadata, ("bounds", "default_connectivity_radius", "acc_mean", "acc_std"))
            self.positions = [torch.from_numpy(reader[i].position.astype(np.float32)) for i in range(len(reader))]
        self.radius = float(self.metadata["default_connectivity_radius"])
        self.bounds = torch.tensor(self.metadata["bounds"], dtype=torch.float32)  # [D, 2]
        self.acc_mean = torch.tensor(self.metadata["acc_mean"], dtype=torch.float32)
        self.acc_std = torch.tensor(self.metadata["acc_std"], dtype=torch.float32)
        self.index = [(k, t) for k, p in enumerate(self.positions) for t in range(1, p.shape[0] - 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[GraphBatch, torch.Tensor]:
        k, t = self.index[item]
        x = self.positions[k]
        acc = x[t + 1] - 2 * x[t] + x[t - 1]
        return self.graph(x[t]), (acc - self.acc_mean) / self.acc_std

    def graph(self, x: torch.Tensor) -> GraphBatch:
        """The input graph of positions ``x [N, D]``."""
        senders, receivers = radius_graph(x, self.radius)
        rel = (x[receivers] - x[senders]) / self.radius
        edges = torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1)
        walls = torch.cat([x - self.bounds[:, 0], self.bounds[:, 1] - x], dim=-1)
        nodes = (walls / self.radius).clamp(-1.0, 1.0)
        return GraphBatch.single(nodes, senders, receivers, edges=edges)


def collate(items: list[tuple[GraphBatch, torch.Tensor]]) -> tuple[GraphBatch, torch.Tensor]:
    graphs, targets = zip(*items)
    return GraphBatch.collate(graphs), torch.cat(targets)


def loss_fn(model: torch.nn.Module, batch: tuple[GraphBatch, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    graph, target = batch
    loss = torch.nn.functional.mse_loss(model(graph).nodes, target)
    return loss, {"explained_variance": 1.0 - float(loss.detach())}


@dataclass
class LearnedForcesRun:
    """A learned-force-field run: soft-disk data, an encode-process-decode network, the shared trainer."""

    data_dir: str = "runs/data/soft_disks"  # folder with train.h5 and test.h5 (physml data generate soft_disks)
    latent: int = 64                        # width of every MLP and latent vector
    n_steps: int = 4                        # message-passing steps
    dim: int | None = field(default=None, metadata={"cli": False})  # spatial dimensions (the data's)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/learned_forces", steps=2000, batch_size=4, lr=1e-3, schedule="cosine", lr_final=1e-5,
        eval_every=0))


def build_model(run: LearnedForcesRun) -> EncodeProcessDecode:
    """The network of a run whose ``dim`` is known."""
    dim = run.dim
    return EncodeProcessDecode(EncodeProcessDecodeConfig(node_in=2 * dim, edge_in=dim + 1, node_out=dim,
                                                         latent=run.latent, n_steps=run.n_steps))


def build(run: LearnedForcesRun) -> Built:
    """Train on ``train.h5``; the evaluation set is ``test.h5`` (normalised with the training statistics)."""
    data_dir = Path(run.data_dir)
    train_set = FrameGraphs(data_dir / "train.h5")
    test_set = FrameGraphs(data_dir / "test.h5", metadata=train_set.metadata)
    run.dim = len(train_set.metadata["bounds"])
    return Built(build_model(run), train_set, test_set, collate, loss_fn)


def after_fit(model: torch.nn.Module, built: Built, run: LearnedForcesRun) -> None:
    plot_parity(model, built.eval_set, Path(run.trainer.run_dir) / "parity.png")


RECIPE = Recipe("forces", "learned force field (encode-process-decode) on a particle dataset, scored on its "
                "test split", LearnedForcesRun, build, build_model, after_fit)


@torch.no_grad()
def plot_parity(model: torch.nn.Module, frames: FrameGraphs, path: Path, max_frames: int = 20) -> None:
    """Predicted against solver acceleration (normalised), one panel per axis."""
    model.eval()
    picks = np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int)
    graph, target = collate([frames[int(i)] for i in picks])
    pred = model(graph.to(next(model.parameters()).device)).nodes.cpu()
    fig, axes = pyplot().subplots(1, target.shape[1], figsize=(4 * target.shape[1], 4))
    for a, ax in enumerate(np.atleast_1d(axes)):
        ax.scatter(target[:, a], pred[:, a], s=2, alpha=0.4)
        lim = float(target[:, a].abs().max())
        ax.plot([-lim, lim], [-lim, lim], "k--", lw=1)
        ax.set_xlabel(f"solver acceleration {'xyz'[a]} (normalised)")
        ax.set_ylabel("learned")
    fig.suptitle("learned forces vs solver, held-out trajectories")
    fig.tight_layout()
    save_figure(fig, path)
