"""Training samples for particle simulators: windows of C + 1 consecutive frames of one trajectory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.trajectories import TrajectoryReader, require_metadata


def check_trajectory(path: Path, index: int, position: np.ndarray, metadata: dict) -> None:
    """Raise ``ValueError`` naming the file and field for NaNs, a wrong dimension or escaped particles."""
    where = f"{path}: trajectory {index:05d}"
    dim = int(metadata["dim"])
    if position.shape[-1] != dim:
        raise ValueError(f"{where}: 'position' has {position.shape[-1]} coordinates, metadata says dim={dim}")
    if not np.isfinite(position).all():
        raise ValueError(f"{where}: 'position' contains NaN or infinite values")
    bounds = np.asarray(metadata["bounds"])
    slack = float(metadata["default_connectivity_radius"])  # SPH particles may press into walls a little
    if (position < bounds[:, 0] - slack).any() or (position > bounds[:, 1] + slack).any():
        raise ValueError(f"{where}: 'position' leaves the metadata bounds {bounds.tolist()} by more than R")


class PositionWindows(Dataset):
    """All windows ``positions [N, C + 1, D]`` (C inputs and the next frame) of a trajectory file."""

    def __init__(self, path: str | Path, history: int = 6) -> None:
        self.path = Path(path)
        with TrajectoryReader(self.path) as reader:
            self.metadata = reader.metadata
            require_metadata(self.path, self.metadata, ("dim", "bounds", "default_connectivity_radius"))
            self.trajectories = []
            for k in range(len(reader)):
                traj = reader[k]
                check_trajectory(self.path, k, traj.position, self.metadata)
                if traj.position.shape[0] <= history:
                    raise ValueError(f"{self.path}: trajectory {k:05d} has {traj.position.shape[0]} frames, "
                                     f"fewer than history + 1 = {history + 1}")
                self.trajectories.append((torch.from_numpy(traj.position.astype(np.float32)),
                                          torch.from_numpy(traj.particle_type)))
        self.history = history
        self.index = [(k, t) for k, (p, _) in enumerate(self.trajectories) for t in range(p.shape[0] - history)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        k, t = self.index[item]
        position, particle_type = self.trajectories[k]
        return {"positions": position[t: t + self.history + 1].transpose(0, 1), "particle_type": particle_type}


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate particles of several windows, with ``batch [N]`` naming each one's window."""
    counts = torch.tensor([s["particle_type"].shape[0] for s in samples])
    return {"positions": torch.cat([s["positions"] for s in samples]),
            "particle_type": torch.cat([s["particle_type"] for s in samples]),
            "batch": torch.repeat_interleave(torch.arange(len(samples)), counts)}
