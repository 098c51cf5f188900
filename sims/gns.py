"""Graph Network-based Simulator (Sanchez-Gonzalez et al. 2020, arXiv:2002.09405).

Faithful to DeepMind's learning_to_simulate: the last C = 6 positions give 5 velocities, normalised by
the dataset statistics inflated by the training noise (``std_eff = sqrt(std^2 + noise^2)``); node features
are those velocities, the distances to the walls divided by R and clipped to [-1, 1], and a learned
particle-type embedding (16); edges join particles closer than R with features ``(x_s - x_r) / R`` and
its norm; encode-process-decode (latent 128, 10 unshared interaction networks, residuals, sum
aggregation) predicts the normalised acceleration; semi-implicit Euler in frame units gives the next
position. Training adds random-walk noise to the input velocities and corrects the target by the last
noise step, so the model learns to undo its own errors.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from datasets.registry import require_at_least
from datasets.trajectories import KINEMATIC
from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from gnn.neighbours import radius_graph

NUM_PARTICLE_TYPES = 9


@dataclass
class GNSConfig:
    latent: int = 128         # width of every MLP and latent vector
    n_steps: int = 10         # message-passing steps
    hidden_layers: int = 2    # hidden layers per MLP
    embedding: int = 16       # particle-type embedding size
    history: int = 6          # C: input positions, giving C - 1 velocities
    noise_std: float = 6.7e-4  # random-walk noise on the last velocity, in position units per frame

    def __post_init__(self) -> None:
        require_at_least(latent=(self.latent, 1), n_steps=(self.n_steps, 1), hidden_layers=(self.hidden_layers, 0),
                         embedding=(self.embedding, 1), history=(self.history, 2), noise_std=(self.noise_std, 0.0))


class GNS(nn.Module):
    """``forward(positions [N, C, D], particle_type [N], batch [N]) -> normalised acceleration [N, D]``."""

    def __init__(self, cfg: GNSConfig, metadata: dict) -> None:
        super().__init__()
        self.cfg = cfg
        dim = int(metadata["dim"])
        self.radius = float(metadata["default_connectivity_radius"])
        noise = cfg.noise_std

        def stat(name: str) -> torch.Tensor:
            return torch.tensor(metadata[name], dtype=torch.float32)

        self.register_buffer("bounds", torch.tensor(metadata["bounds"], dtype=torch.float32))  # [D, 2]
        self.register_buffer("vel_mean", stat("vel_mean"))
        self.register_buffer("vel_std", (stat("vel_std") ** 2 + noise ** 2).sqrt())
        self.register_buffer("acc_mean", stat("acc_mean"))
        self.register_buffer("acc_std", (stat("acc_std") ** 2 + noise ** 2).sqrt())
        self.embedding = nn.Embedding(NUM_PARTICLE_TYPES, cfg.embedding)
        node_in = (cfg.history - 1) * dim + 2 * dim + cfg.embedding
        self.net = EncodeProcessDecode(EncodeProcessDecodeConfig(
            node_in=node_in, edge_in=dim + 1, node_out=dim, latent=cfg.latent,
            hidden_layers=cfg.hidden_layers, n_steps=cfg.n_steps))

    def graph(self, positions: torch.Tensor, particle_type: torch.Tensor, batch: torch.Tensor) -> GraphBatch:
        """The input graph of a window of positions ``[N, C, D]``."""
        if positions.dim() != 3 or positions.shape[1] != self.cfg.history:
            raise ValueError(f"GNS takes positions [N, C={self.cfg.history}, D], got {tuple(positions.shape)}")
        last = positions[:, -1]
        senders, receivers = radius_graph(last, self.radius, batch=batch)
        velocities = (positions[:, 1:] - positions[:, :-1] - self.vel_mean) / self.vel_std
        walls = torch.cat([last - self.bounds[:, 0], self.bounds[:, 1] - last], dim=-1) / self.radius
        nodes = torch.cat([velocities.flatten(1), walls.clamp(-1.0, 1.0), self.embedding(particle_type)], dim=-1)
        rel = (last[senders] - last[receivers]) / self.radius
        n_graphs = int(batch.max()) + 1 if batch.numel() else 1
        n_node = torch.bincount(batch, minlength=n_graphs)
        return GraphBatch(nodes=nodes, senders=senders, receivers=receivers,
                          edges=torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1),
                          n_node=n_node, n_edge=torch.bincount(batch[receivers], minlength=n_graphs))

    def forward(self, positions: torch.Tensor, particle_type: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return self.net(self.graph(positions, particle_type, batch)).nodes

    def next_position(self, positions: torch.Tensor, normalised_acc: torch.Tensor) -> torch.Tensor:
        """Semi-implicit Euler in frame units: ``v' = v + a``, ``x' = x + v'``."""
        acc = normalised_acc * self.acc_std + self.acc_mean
        return positions[:, -1] + (positions[:, -1] - positions[:, -2]) + acc

    def target(self, positions: torch.Tensor, next_position: torch.Tensor) -> torch.Tensor:
        """The normalised acceleration that takes ``positions [N, C, D]`` to ``next_position [N, D]``."""
        acc = next_position - 2 * positions[:, -1] + positions[:, -2]
        return (acc - self.acc_mean) / self.acc_std


def random_walk_noise(positions: torch.Tensor, noise_std: float) -> torch.Tensor:
    """Noise ``[N, C, D]`` for a window of positions: a random walk in velocity whose last step has std
    ``noise_std``; the first position is left clean (DeepMind's get_random_walk_noise_for_position_sequence)."""
    n_vel = positions.shape[1] - 1
    vel_noise = torch.randn_like(positions[:, 1:]) * (noise_std / n_vel ** 0.5)
    vel_noise = vel_noise.cumsum(dim=1)
    return torch.cat([torch.zeros_like(positions[:, :1]), vel_noise.cumsum(dim=1)], dim=1)


def training_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE on normalised acceleration over non-kinematic particles, with noisy inputs and corrected target."""
    gns: GNS = getattr(model, "module", model)
    window, types, graph_of = batch["positions"], batch["particle_type"], batch["batch"]
    inputs, next_position = window[:, :-1], window[:, -1]
    noise = random_walk_noise(inputs, gns.cfg.noise_std) if model.training else torch.zeros_like(inputs)
    kinematic = (types == KINEMATIC)[:, None, None]
    noise = noise.masked_fill(kinematic, 0.0)
    noisy = inputs + noise
    target = gns.target(noisy, next_position + noise[:, -1])
    pred = model(noisy, types, graph_of)
    moving = types != KINEMATIC
    loss = ((pred - target) ** 2)[moving].mean()
    with torch.no_grad():
        position_mse = ((gns.next_position(noisy, pred) - next_position - noise[:, -1]) ** 2)[moving].mean()
    return loss, {"one_step_position_mse": float(position_mse)}
