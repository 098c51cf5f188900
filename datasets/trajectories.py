"""HDF5 store for particle trajectories (schema ``particle-trajectories``, documented in docs/schemas.md).

Layout (one file per split)::

    /                      attrs: schema="particle-trajectories", schema_version=1, metadata=<JSON>
    /{traj:05d}/position   float32 [T, N, D]  attrs: units (default "m")
    /{traj:05d}/particle_type  int64 [N]

``metadata`` holds DeepMind's ``metadata.json`` fields (bounds, sequence_length,
default_connectivity_radius, dim, dt, vel_mean/std, acc_mean/std) plus whatever the generator adds.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from datasets.hdf5 import CHECKSUM, SchemaReader, corruption_as_value_error, read_array, schema_file

SCHEMA = "particle-trajectories"
SCHEMA_VERSION = 1

# particle_type ids, DeepMind's learning_to_simulate convention (their datasets use the same numbers)
DISK = 0         # a plain particle (our soft-disk system)
KINEMATIC = 3    # motion prescribed, not predicted (walls, obstacles)
WATER = 5


@dataclass(frozen=True)
class Trajectory:
    """One trajectory: ``position [T, N, D]`` and ``particle_type [N]``."""

    position: np.ndarray
    particle_type: np.ndarray

    def __post_init__(self) -> None:
        if self.position.ndim != 3:
            raise ValueError(f"position must be [T, N, D], got shape {self.position.shape}")
        if self.particle_type.shape != (self.position.shape[1],):
            raise ValueError(f"particle_type must be [N={self.position.shape[1]}], "
                             f"got shape {self.particle_type.shape}")


def write_trajectories(path: str | os.PathLike, trajectories: Iterable[Trajectory], metadata: dict,
                       units: str = "m") -> int:
    """Write ``trajectories`` atomically to ``path``; returns how many were written."""
    count = 0
    with schema_file(path, SCHEMA, SCHEMA_VERSION, metadata) as f:
        for count, traj in enumerate(trajectories, start=1):
            group = f.create_group(f"{count - 1:05d}")
            pos = group.create_dataset("position", data=traj.position.astype(np.float32), compression="lzf",
                                       **CHECKSUM)
            pos.attrs["units"] = units
            group.create_dataset("particle_type", data=traj.particle_type.astype(np.int64))
    return count


class TrajectoryReader(SchemaReader):
    """Random access to a trajectory file: ``len(reader)``, ``reader[i] -> Trajectory``, ``reader.metadata``."""

    schema, version, what = SCHEMA, SCHEMA_VERSION, "trajectory file"

    def check_metadata(self) -> None:
        check_metadata(self.path, self.metadata)

    def __getitem__(self, index: int) -> Trajectory:
        with corruption_as_value_error(self.path):
            key, group = self.group(index)
            for field in ("position", "particle_type"):
                if field not in group:
                    raise ValueError(f"{self.path}: trajectory {key} has no '{field}' dataset")
            where = f"trajectory {key}"
            return Trajectory(position=read_array(self.path, group["position"], f"{where}: 'position'"),
                              particle_type=read_array(self.path, group["particle_type"], f"{where}: 'particle_type'",
                                                       kind="i"))


# the metadata a learned particle simulator needs (DeepMind's metadata.json fields)
SIMULATOR_METADATA = ("dim", "bounds", "default_connectivity_radius", "vel_mean", "vel_std", "acc_mean", "acc_std")


def require_metadata(path: str | os.PathLike, metadata: dict, keys: Iterable[str] = SIMULATOR_METADATA) -> None:
    """Raise ``ValueError`` naming the file and every missing metadata key."""
    missing = [k for k in keys if k not in metadata]
    if missing:
        raise ValueError(f"{path}: metadata lacks {', '.join(missing)} (DeepMind's metadata.json fields, needed "
                         "to build the simulator's graphs and normalise its inputs)")


def check_metadata(path: str | os.PathLike, metadata: dict) -> None:
    """Raise ``ValueError`` naming the file and key if a present simulator metadata value has the wrong kind,
    shape or domain: ``dim`` 1-3, ``bounds`` ``[dim, 2]`` with low < high, positive ``dt`` and connectivity
    radius, ``dim`` finite means and positive stds (statistics of at least three frames)."""
    dim = metadata.get("dim")
    if dim is not None and dim not in (1, 2, 3):
        raise ValueError(f"{path}: metadata 'dim' is {dim!r}, expected 1, 2 or 3")
    shapes = {"bounds": (dim, 2), "default_connectivity_radius": (), "dt": (),
              "vel_mean": (dim,), "acc_mean": (dim,), "vel_std": (dim,), "acc_std": (dim,)}
    for key, shape in shapes.items():
        if key not in metadata:
            continue
        try:
            values = np.asarray(metadata[key], dtype=np.float64)
        except (TypeError, ValueError):
            values = None
        positive = key not in ("bounds", "vel_mean", "acc_mean")
        ok = (values is not None and values.ndim == len(shape)
              and (dim is None or values.shape == tuple(dim if s is None else s for s in shape))
              and values.size > 0 and np.isfinite(values).all() and (not positive or (values > 0).all())
              and (key != "bounds" or (values.shape[1] == 2 and (values[:, 0] < values[:, 1]).all()))
              and not isinstance(metadata[key], str))
        if not ok:
            expected = {"bounds": f"[{dim}, 2] finite [low, high] pairs with low < high"}.get(
                key, f"{'a' if not shape else dim} {'positive finite' if positive else 'finite'} "
                     f"number{'s' if shape else ''}")
            raise ValueError(f"{path}: metadata '{key}' is {metadata[key]!r}, expected {expected}"
                             f"{' (statistics of at least three frames)' if key.endswith('_std') else ''}")
