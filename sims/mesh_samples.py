"""Training samples of the mesh-based simulators: one (trajectory, frame) of a mesh-trajectory file as a
:class:`sims.meshgraphnet.MeshState`, and the collation of several meshes into one batch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.meshes import MeshTrajectory, MeshTrajectoryReader
from sims.mesh import mesh_edges, two_way
from sims.meshgraphnet import MeshState

FIELDS = {"flow": "velocity", "cloth": "world_pos"}
FORCING = "wind"  # a forcing field [T, N, F]: the model sees its frame t and t + 1 values


def kind_of(traj: MeshTrajectory, where: str = "trajectory") -> str:
    """``flow`` for a velocity field, ``cloth`` for a moving mesh (``world_pos``)."""
    for kind, name in FIELDS.items():
        if name in traj.fields:
            return kind
    raise ValueError(f"{where}: needs a 'velocity' (flow) or 'world_pos' (cloth) field, has {sorted(traj.fields)}")


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def forcing_at(traj: MeshTrajectory, t: int) -> torch.Tensor:
    """``[N, 2F]``: the forcing field at frames ``t`` and ``t + 1`` (the last frame's twice at the end)."""
    forcing = traj.fields[FORCING]
    return _tensor(np.concatenate([forcing[t], forcing[min(t + 1, len(forcing) - 1)]], axis=-1))


def frame_state(traj: MeshTrajectory, t: int, kind: str, edges: np.ndarray | None = None) -> MeshState:
    """The state at frame ``t`` (cloth also uses ``t - 1``) with frame ``t + 1`` as target (if any), and the
    forcing at frames ``t`` and ``t + 1`` if the trajectory has one (the last frame's twice at the end)."""
    field = traj.fields[FIELDS[kind]]
    senders, receivers = two_way(mesh_edges(traj.cells) if edges is None else edges)
    state = MeshState(mesh_pos=_tensor(traj.mesh_pos), node_type=torch.as_tensor(traj.node_type),
                      batch=torch.zeros(len(traj.mesh_pos), dtype=torch.long),
                      senders=torch.as_tensor(senders), receivers=torch.as_tensor(receivers))
    target = _tensor(field[t + 1]) if t + 1 < len(field) else None
    if FORCING in traj.fields:
        state = state.replace(forcing=forcing_at(traj, t))
    if kind == "flow":
        return state.replace(velocity=_tensor(field[t]), target=target)
    return state.replace(world_pos=_tensor(field[t]), prev_world_pos=_tensor(field[t - 1]), target=target)


class MeshFrames(Dataset):
    """Every (trajectory, frame) of a mesh-trajectory file with a next frame (and, for cloth, a previous one),
    held in memory."""

    def __init__(self, path: str | Path) -> None:
        with MeshTrajectoryReader(path) as reader:
            self.metadata = reader.metadata
            self.trajectories = [reader[i] for i in range(len(reader))]
        if not self.trajectories:
            raise ValueError(f"{path}: no trajectories")
        self.kind = kind_of(self.trajectories[0], str(path))
        first_fields = self.trajectories[0].fields
        self.forcing = 2 * first_fields[FORCING].shape[-1] if FORCING in first_fields else 0  # now and next frame
        self.edges = [mesh_edges(t.cells) for t in self.trajectories]
        first = 0 if self.kind == "flow" else 1
        self.index = [(i, t) for i, traj in enumerate(self.trajectories)
                      for t in range(first, len(traj.fields[FIELDS[self.kind]]) - 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> MeshState:
        traj, t = self.index[i]
        return frame_state(self.trajectories[traj], t, self.kind, self.edges[traj])


def collate(states: list[MeshState]) -> MeshState:
    """One batch: nodes concatenated, edge endpoints offset, ``batch`` numbering the meshes."""
    offsets = np.cumsum([0] + [len(s.node_type) for s in states[:-1]])

    def cat(name: str) -> torch.Tensor | None:
        return None if getattr(states[0], name) is None else torch.cat([getattr(s, name) for s in states])

    return MeshState(mesh_pos=cat("mesh_pos"), node_type=cat("node_type"),
                     batch=torch.cat([torch.full((len(s.node_type),), g, dtype=torch.long)
                                      for g, s in enumerate(states)]),
                     senders=torch.cat([s.senders + int(o) for s, o in zip(states, offsets)]),
                     receivers=torch.cat([s.receivers + int(o) for s, o in zip(states, offsets)]),
                     velocity=cat("velocity"), world_pos=cat("world_pos"), prev_world_pos=cat("prev_world_pos"),
                     target=cat("target"), forcing=cat("forcing"))
