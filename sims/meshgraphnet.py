"""MeshGraphNets (Pfaff et al. 2021, arXiv:2010.03409) on the shared graph core.

Nodes carry the state's velocity and a one-hot node type; mesh edges (each triangle side, both ways)
carry the relative mesh-space position and its norm, and for cloth also the relative world-space position
and norm. Cloth adds world edges: node pairs closer than ``world_radius`` in world space that are not mesh
neighbours, found each step with :func:`gnn.neighbours.radius_graph`, with their own encoder, edge MLPs and
aggregation. Encode-process-decode: ``n_steps`` (15) unshared :class:`gnn.blocks.MultiEdgeInteractionNetwork`
blocks, latent 128, LayerNorm, residuals on nodes and edges. Inputs and outputs go through online
normalisers. Outputs: the velocity change per frame (flow) or the acceleration ``x_{t+1} - 2 x_t + x_{t-1}``
(cloth). Cloth nodes also see the forcing when the data has one (the flag's wind now and at the next
frame: each trajectory has its own wind and gusts, which the motion cannot be predicted without).
Training noise on NORMAL nodes only: for cloth the paper's world-position noise 0.003 m with gamma
0.1; for flow half the RMS per-frame velocity change of the training data with gamma 1 (the paper's fixed
0.02 m/s is tied to its data: on near-steady flows it was 10-200x the signal, and the network learnt a
denoiser instead of the dynamics). The loss covers NORMAL (and, for flow, OUTFLOW) nodes.
With ``strain_output`` a cloth model also reads each mesh edge's strain and predicts its strain at the next
frame (an edge decoder); the rollout projects the predicted positions onto those edge lengths
(:mod:`sims.constraints`): the stiff springs' lengths are predicted where they are a network output of
order one, not as a 0.1% difference of two position outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from datasets.meshes import NODE_TYPES, NORMAL, OUTFLOW
from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from gnn.neighbours import radius_graph
from gnn.normaliser import OnlineNormaliser


NOISE_PER_CHANGE = 0.5  # flow training noise / RMS per-frame velocity change of the training data (not tuned)


@dataclass
class MeshGraphNetConfig:
    kind: str | None = None      # "flow" (velocity field on a fixed mesh) or "cloth" (moving mesh); None: the data's
    latent: int = 128            # width of every MLP and latent vector
    n_steps: int = 15            # message-passing steps
    hidden_layers: int = 2       # hidden layers per MLP
    world_radius: float = 0.0    # cloth: world-edge radius (m); 0: none (our cloth solver has no self-contact)
    forcing: int | None = None   # per-node forcing features (the flag's wind now and next frame: 6); None: the data's
    noise_std: float | None = None    # training noise; None: 0.003 m (cloth); flow: NOISE_PER_CHANGE x the data's
    #                                   RMS per-frame velocity change, set by training
    noise_gamma: float | None = None  # share of the noise the target corrects; None: 1.0 (flow), 0.1 (cloth)
    refinement_steps: int = 0    # PDE-Refiner denoising steps K after the one-step prediction (sims/refiner.py)
    min_noise_std: float = 1e-3  # PDE-Refiner: last step's noise std, normalised units (sigma_k = this^(k/K))
    strain_limit: float | None = None  # cloth rollouts: largest |edge strain| per step; None: the data's; 0: off
    #                                    (sims/constraints.py; None is set by training; older runs: off)
    edge_loss: float = 0.0       # cloth: weight of the edge-length loss (edge_length_loss); 0: off
    strain_output: bool = False  # cloth: also predict each mesh edge's next strain; rollouts project onto it
    strain_sweeps: int = 200     # cloth: Gauss-Seidel sweeps of each frame's projection (StrainLimiter)

    def __post_init__(self) -> None:
        if self.kind is None:  # resolved from the data before a network is built
            return
        if self.kind not in ("flow", "cloth"):
            raise ValueError(f"kind must be 'flow' or 'cloth', got {self.kind!r}")
        if (self.strain_limit or 0) < 0 or (self.strain_limit and self.kind != "cloth"):
            raise ValueError(f"strain_limit must be >= 0, and > 0 only for cloth; got {self.strain_limit} for "
                             f"{self.kind!r}")
        if self.edge_loss < 0 or (self.edge_loss and self.kind != "cloth"):
            raise ValueError(f"edge_loss must be >= 0, and > 0 only for cloth; got {self.edge_loss} for {self.kind!r}")
        if self.strain_output and (self.kind != "cloth" or self.refinement_steps):
            raise ValueError(f"strain_output is for cloth without refinement steps; got {self.kind!r} with "
                             f"refinement_steps={self.refinement_steps}")
        if self.strain_output and self.strain_limit == 0:
            raise ValueError("strain_output needs the strain limiter, which projects onto the predicted strains: "
                             "strain_limit must not be 0")
        if self.strain_sweeps < 1:
            raise ValueError(f"strain_sweeps must be >= 1, got {self.strain_sweeps}")
        if self.refinement_steps < 0 or not 0 < self.min_noise_std < 1:
            raise ValueError(f"refinement_steps must be >= 0 and min_noise_std in (0, 1), got "
                             f"{self.refinement_steps} and {self.min_noise_std}")
        if self.edge_loss and self.refinement_steps:
            raise ValueError("edge_loss applies to the one-step loss only; the refiner's denoising loss ignores it, "
                             f"so it cannot be combined with refinement_steps={self.refinement_steps}")
        flow = self.kind == "flow"
        if self.noise_std is None and not flow:
            self.noise_std = 0.003
        if self.noise_gamma is None:
            self.noise_gamma = 1.0 if flow else 0.1

    @property
    def dim(self) -> int:
        """Components of the predicted field: 2 velocity components (flow) or 3 position components (cloth)."""
        return 2 if self.kind == "flow" else 3


@dataclass(frozen=True)
class MeshState:
    """A batch of meshes at one frame, nodes concatenated: ``mesh_pos [N, 2]``, ``node_type [N]``,
    ``batch [N]``, mesh edges ``senders/receivers [E]`` (both directions), and the state: flow ``velocity
    [N, 2]``; cloth ``world_pos`` and ``prev_world_pos [N, 3]``. ``target`` is the next frame's velocity or
    world position, when known; ``forcing [N, F]`` the external forcing, when the data has one (the flag's
    wind velocity at this frame and the next, m/s). ``edge_strain [E, 1]`` is the mesh edges' strain a
    ``strain_output`` model reads when it is not that of ``world_pos``: training noise moves the positions,
    not the springs' lengths (noise of 0.003 m on edges of 0.057 m lengthens them by 0.5% on average, 4x the
    cloth's mean strain, and a network taught on noisy lengths under-predicts clean ones)."""

    mesh_pos: torch.Tensor
    node_type: torch.Tensor
    batch: torch.Tensor
    senders: torch.Tensor
    receivers: torch.Tensor
    velocity: torch.Tensor | None = None
    world_pos: torch.Tensor | None = None
    prev_world_pos: torch.Tensor | None = None
    target: torch.Tensor | None = None
    forcing: torch.Tensor | None = None
    edge_strain: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.batch.max()) + 1 if self.batch.numel() else 0

    def to(self, device) -> "MeshState":
        return MeshState(**{k: None if v is None else v.to(device) for k, v in self.__dict__.items()})

    def replace(self, **changes) -> "MeshState":
        return MeshState(**{**self.__dict__, **changes})

    def step_to(self, frame: torch.Tensor) -> "MeshState":
        """The state one frame on: ``frame [N, dim]`` is the new velocity (flow) or world position (cloth,
        the current one becoming the previous, its edge strains read from it); target and forcing are left as
        they are."""
        if self.velocity is not None:
            return self.replace(velocity=frame)
        return self.replace(prev_world_pos=self.world_pos, world_pos=frame, edge_strain=None)


class MeshGraphNet(nn.Module):
    """``forward(state) -> normalised prediction [N, dim]``; :meth:`advance` gives the next state.

    Args:
        cfg: the configuration (its ``kind`` resolved).
        extra_inputs: per-node inputs a subclass appends to the normalised node features (the refiner's).
    """

    def __init__(self, cfg: MeshGraphNetConfig, extra_inputs: int = 0) -> None:
        super().__init__()
        if cfg.kind is None:
            raise ValueError("MeshGraphNetConfig.kind is None: set 'flow' or 'cloth' (training sets the data's)")
        self.cfg = cfg
        cloth = cfg.kind == "cloth"
        node_in = cfg.dim + NODE_TYPES + (cfg.forcing or 0)
        edge_in = [(7 + cfg.strain_output) if cloth else 3] + ([4] if cloth and cfg.world_radius > 0 else [])
        self.node_norm = OnlineNormaliser(node_in)
        self.edge_norms = nn.ModuleList(OnlineNormaliser(n) for n in edge_in)
        self.output_norm = OnlineNormaliser(cfg.dim)
        self.strain_norm = OnlineNormaliser(1) if cfg.strain_output else None
        self.net = EncodeProcessDecode(EncodeProcessDecodeConfig(
            node_in=node_in + extra_inputs, edge_in=tuple(edge_in), node_out=cfg.dim, edge_out=int(cfg.strain_output),
            latent=cfg.latent, hidden_layers=cfg.hidden_layers, n_steps=cfg.n_steps))

    def velocity(self, state: MeshState) -> torch.Tensor:
        return state.velocity if self.cfg.kind == "flow" else state.world_pos - state.prev_world_pos

    def graphs(self, state: MeshState, extra: torch.Tensor | None = None) -> list[GraphBatch]:
        """The normalised input graphs: mesh edges, then (cloth) world edges; ``extra [N, E]`` is appended to
        the normalised node features."""
        one_hot = F.one_hot(state.node_type, NODE_TYPES).to(state.mesh_pos.dtype)
        forcing = [state.forcing] if self.cfg.forcing else []
        nodes = self.node_norm(torch.cat([self.velocity(state), one_hot, *forcing], dim=-1))
        if extra is not None:
            nodes = torch.cat([nodes, extra], dim=-1)
        s, r = state.senders, state.receivers
        rel_mesh = state.mesh_pos[s] - state.mesh_pos[r]
        features = [rel_mesh, rel_mesh.norm(dim=-1, keepdim=True)]
        if self.cfg.kind == "cloth":
            rel_world = state.world_pos[s] - state.world_pos[r]
            features = [rel_world, rel_world.norm(dim=-1, keepdim=True)] + features
            if self.cfg.strain_output:  # explicit: the ratio of two lengths is what the springs act on
                strain = state.edge_strain
                features.append(mesh_edge_strain(state.world_pos, state) if strain is None else strain)
        edge_sets = [(s, r, torch.cat(features, dim=-1))]
        if len(self.edge_norms) == 2:
            ws, wr = world_edges(state, self.cfg.world_radius)
            rel = state.world_pos[ws] - state.world_pos[wr]
            edge_sets.append((ws, wr, torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1)))
        n_graphs = len(state)
        n_node = torch.bincount(state.batch, minlength=n_graphs)
        return [GraphBatch(nodes=nodes, senders=es, receivers=er, edges=norm(ef), n_node=n_node,
                           n_edge=torch.bincount(state.batch[er], minlength=n_graphs))
                for (es, er, ef), norm in zip(edge_sets, self.edge_norms)]

    def forward(self, state: MeshState, with_strain: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The normalised prediction ``[N, dim]``; with ``with_strain`` (a ``strain_output`` model) also the
        normalised next strain of every directed mesh edge ``[E, 1]``."""
        out = self.net(self.graphs(state))
        if not with_strain:
            return out.nodes
        if self.strain_norm is None:
            raise ValueError("this model has no strain output (MeshGraphNetConfig.strain_output is False)")
        return out.nodes, out.edges

    def strain_target(self, state: MeshState) -> torch.Tensor:
        """The next frame's strain of every directed mesh edge ``[E, 1]``, from ``state.target`` (unnormalised)."""
        return mesh_edge_strain(state.target, state)

    def target_output(self, state: MeshState) -> torch.Tensor:
        """The unnormalised quantity the network predicts, from ``state.target``."""
        if self.cfg.kind == "flow":
            return state.target - state.velocity
        return state.target - 2 * state.world_pos + state.prev_world_pos

    def loss_mask(self, state: MeshState) -> torch.Tensor:
        mask = state.node_type == NORMAL
        return mask | (state.node_type == OUTFLOW) if self.cfg.kind == "flow" else mask

    def next_frame(self, state: MeshState, prediction: torch.Tensor) -> torch.Tensor:
        """The next frame's velocity (flow) or world position (cloth) from a normalised ``prediction [N, dim]``."""
        out = self.output_norm.inverse(prediction)
        if self.cfg.kind == "flow":
            return state.velocity + out
        return 2 * state.world_pos - state.prev_world_pos + out

    @torch.no_grad()
    def advance(self, state: MeshState, generator: torch.Generator | None = None) -> torch.Tensor:
        """The next frame's velocity (flow) or world position (cloth) predicted at every node; the rollout
        overwrites the nodes outside the loss mask with their prescribed values. ``generator`` is for models
        that sample (the refiner); this one is deterministic."""
        return self.next_frame(state, self(state))


def mesh_edge_strain(positions: torch.Tensor, state: MeshState) -> torch.Tensor:
    """``[E, 1]`` strains ``|x_s - x_r| / L - 1`` of ``state``'s directed mesh edges in ``positions [N, 3]``,
    the rest lengths ``L`` from ``state.mesh_pos``."""
    s, r = state.senders, state.receivers
    rest = (state.mesh_pos[s] - state.mesh_pos[r]).norm(dim=-1, keepdim=True)
    return (positions[s] - positions[r]).norm(dim=-1, keepdim=True) / rest - 1


def undirected_edges(state: MeshState) -> tuple[torch.Tensor, torch.Tensor]:
    """Each mesh edge once, ``[E', 2]`` with the lower node first, sorted, and the index ``[E]`` of each
    directed edge of ``state`` among them (both directions of an edge share one)."""
    n = state.mesh_pos.shape[0]
    low, high = torch.minimum(state.senders, state.receivers), torch.maximum(state.senders, state.receivers)
    keys, index = torch.unique(low * n + high, return_inverse=True)
    return torch.stack([keys // n, keys % n], dim=1), index


def world_edges(state: MeshState, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs within ``radius`` in world space (same mesh) that are not mesh edges, both directions."""
    senders, receivers = radius_graph(state.world_pos.detach(), radius, batch=state.batch)
    n = state.world_pos.shape[0]
    mesh_keys = state.senders * n + state.receivers
    keep = ~torch.isin(senders * n + receivers, mesh_keys)
    return senders[keep], receivers[keep]


def flow_noise_std(velocities: list[np.ndarray], node_types: list[np.ndarray]) -> float:
    """The flow model's training noise: ``NOISE_PER_CHANGE`` times the RMS per-frame velocity change (per
    component) on the NORMAL nodes of ``velocities [T, N, 2]`` (one array per trajectory)."""
    squares = [(np.diff(v[:, t == NORMAL], axis=0) ** 2).ravel() for v, t in zip(velocities, node_types)]
    return float(NOISE_PER_CHANGE * np.sqrt(np.concatenate(squares).mean()))


def add_training_noise(model: MeshGraphNet, state: MeshState, generator: torch.Generator | None = None) -> MeshState:
    """The paper's noise on NORMAL nodes: on the velocity (flow) or the current world position (cloth), with
    the target moved by ``(1 - gamma)`` of it so the network learns to correct its own drift. A
    ``strain_output`` cloth model keeps reading the clean edge strains (``MeshState.edge_strain``)."""
    cfg = model.cfg
    if cfg.noise_std is None:
        raise ValueError("MeshGraphNetConfig.noise_std is None: training sets it from the data (flow_noise_std)")
    field = state.velocity if cfg.kind == "flow" else state.world_pos
    noise = torch.randn(field.shape, generator=generator, device=field.device, dtype=field.dtype) * cfg.noise_std
    noise = noise * (state.node_type == NORMAL)[:, None]
    target = state.target + (1.0 - cfg.noise_gamma) * noise
    if cfg.kind == "flow":
        return state.replace(velocity=state.velocity + noise, target=target)
    strain = mesh_edge_strain(state.world_pos, state) if cfg.strain_output else None  # the clean lengths
    return state.replace(world_pos=state.world_pos + noise, target=target, edge_strain=strain)


def training_targets(model: nn.Module, state: MeshState) -> tuple[MeshGraphNet, MeshState, torch.Tensor, torch.Tensor]:
    """The network (unwrapped from DDP), the state after training noise (when training), the normalised
    target ``[N, dim]`` and the loss mask ``[N]``: what every mesh-model objective starts from."""
    net: MeshGraphNet = getattr(model, "module", model)
    noisy = add_training_noise(net, state) if model.training else state
    return net, noisy, net.output_norm(net.target_output(noisy)), net.loss_mask(noisy)


def edge_length_loss(net: MeshGraphNet, noisy: MeshState, prediction: torch.Tensor, clean_target: torch.Tensor
                     ) -> torch.Tensor:
    """Mean squared error of the next frame's mesh-edge lengths, in units of the output normaliser's mean std
    (so it weighs like the position loss): the cloth's stretch springs are stiff (strains of 0.1%), and a
    position loss does not see a bias in edge length that is 20x below its position error (docs/sims.md).

    Args:
        net: the cloth model.
        noisy: the input state (after training noise).
        prediction: the normalised prediction ``[N, 3]`` for ``noisy``.
        clean_target: the true next world positions ``[N, 3]`` (without the noise's target correction: the
            springs' lengths do not keep the noise).
    """
    mask = net.loss_mask(noisy)[:, None]
    frame = torch.where(mask, net.next_frame(noisy, prediction.float()), clean_target)  # prescribed: as in rollouts
    s, r = noisy.senders, noisy.receivers
    error = (frame[s] - frame[r]).norm(dim=-1) - (clean_target[s] - clean_target[r]).norm(dim=-1)
    return ((error / net.output_norm.std.mean()) ** 2).mean()


def training_loss(model: nn.Module, state: MeshState) -> tuple[torch.Tensor, dict]:
    """MSE of the normalised prediction on the loss-mask nodes, after training noise (when training), plus
    ``cfg.edge_loss`` times :func:`edge_length_loss` (cloth, when set), plus the MSE of the normalised next
    strain of every mesh edge (``cfg.strain_output``; the clean frame's strain: the springs do not keep the
    noise)."""
    net, noisy, target, mask = training_targets(model, state)
    strain = None
    if net.cfg.strain_output:
        prediction, strain = model(noisy, with_strain=True)
    else:
        prediction = model(noisy)
    loss = ((prediction - target) ** 2).sum(-1)[mask].mean()
    logs = {}
    if net.cfg.edge_loss:
        edges = edge_length_loss(net, noisy, prediction, state.target)
        loss, logs["edge_loss"] = loss + net.cfg.edge_loss * edges, float(edges)
    if strain is not None:
        strains = ((strain.float() - net.strain_norm(net.strain_target(state))) ** 2).mean()
        loss, logs["strain_loss"] = loss + strains, float(strains.detach())
    return loss, logs
