"""HDF5 store for mesh trajectories (schema ``mesh-trajectories``, documented in docs/schemas.md).

Layout (one file per split; every trajectory has its own mesh)::

    /                       attrs: schema="mesh-trajectories", schema_version=1, metadata=<JSON>
    /{traj:05d}/mesh_pos    float32 [N, 2]   attrs: units ("m")
    /{traj:05d}/cells       int32   [C, 3]   node indices of each triangle
    /{traj:05d}/node_type   int32   [N]      MeshGraphNets' node types (below)
    /{traj:05d}/{field}     float32 [T, N, F] attrs: units; e.g. velocity (m/s), pressure (m^2/s^2), world_pos (m)

``metadata`` holds ``dt`` (s between frames), ``fields`` (name -> units) and whatever the generator adds.
Node types are those of MeshGraphNets (Pfaff et al. 2021), so data in their convention reads unchanged.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from datasets.hdf5 import CHECKSUM, SchemaReader, corruption_as_value_error, read_array, schema_file

SCHEMA = "mesh-trajectories"
SCHEMA_VERSION = 1
NORMAL, OBSTACLE, AIRFOIL, HANDLE, INFLOW, OUTFLOW, WALL_BOUNDARY = 0, 1, 2, 3, 4, 5, 6
NODE_TYPES = 9  # width of the one-hot node type (MeshGraphNets' NodeType.SIZE)
MESH_KEYS = ("mesh_pos", "cells", "node_type")


@dataclass(frozen=True)
class MeshTrajectory:
    """One trajectory on one mesh: ``mesh_pos [N, 2]``, ``cells [C, 3]``, ``node_type [N]`` and per-frame
    ``fields`` (name -> ``[T, N, F]``)."""

    mesh_pos: np.ndarray
    cells: np.ndarray
    node_type: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)

    def check(self, where: str = "mesh") -> None:
        check_mesh(self.mesh_pos, self.cells, self.node_type, where)
        frames = {v.shape[0] for v in self.fields.values() if v.ndim == 3}
        for name, value in self.fields.items():
            if value.ndim != 3 or value.shape[1] != len(self.mesh_pos):
                raise ValueError(f"{where}: field '{name}' must be [T, N={len(self.mesh_pos)}, F], "
                                 f"got shape {value.shape}")
            if len(frames) > 1:
                raise ValueError(f"{where}: fields disagree on the number of frames: "
                                 f"{ {k: v.shape[0] for k, v in self.fields.items()} }")
            if not np.isfinite(value).all():
                raise ValueError(f"{where}: field '{name}' contains NaN or infinite values")


def check_mesh(mesh_pos: np.ndarray, cells: np.ndarray, node_type: np.ndarray, where: str = "mesh") -> None:
    """Raise ``ValueError`` naming ``where`` for degenerate triangles, unreferenced nodes, out-of-range
    indices or node types, and shapes that disagree."""
    n = len(mesh_pos)
    if mesh_pos.ndim != 2 or mesh_pos.shape[1] != 2:
        raise ValueError(f"{where}: mesh_pos must be [N, 2], got shape {mesh_pos.shape}")
    if cells.ndim != 2 or cells.shape[1] != 3:
        raise ValueError(f"{where}: cells must be [C, 3], got shape {cells.shape}")
    if node_type.shape != (n,):
        raise ValueError(f"{where}: node_type must be [N={n}], got shape {node_type.shape}")
    if cells.size and (cells.min() < 0 or cells.max() >= n):
        raise ValueError(f"{where}: cells index nodes outside 0..{n - 1}")
    if node_type.size and (node_type.min() < 0 or node_type.max() >= NODE_TYPES):
        raise ValueError(f"{where}: node_type values must lie in 0..{NODE_TYPES - 1}, "
                         f"got {node_type.min()}..{node_type.max()}")
    unused = np.setdiff1d(np.arange(n), cells.ravel())
    if unused.size:
        raise ValueError(f"{where}: {unused.size} node(s) belong to no cell, e.g. node {unused[0]}")
    a, b, c = (mesh_pos[cells[:, i]] for i in range(3))
    area = 0.5 * np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    scale = max(float(np.ptp(mesh_pos, axis=0).max()), 1e-300)
    bad = np.nonzero(area <= 1e-12 * scale ** 2)[0]
    if bad.size:
        raise ValueError(f"{where}: {bad.size} degenerate (zero-area) triangle(s), e.g. cell {bad[0]}")


def write_mesh_trajectories(path: str | os.PathLike, trajectories: Iterable[MeshTrajectory], metadata: dict) -> int:
    """Check and write ``trajectories`` atomically to ``path`` (nothing is left if one fails); returns how many.
    ``metadata["fields"]`` names the units of every field."""
    units = metadata.get("fields", {})
    count = 0
    with schema_file(path, SCHEMA, SCHEMA_VERSION, metadata) as f:
        for count, traj in enumerate(trajectories, start=1):
            name = f"{count - 1:05d}"
            traj.check(f"{path}: trajectory {name}")
            missing = set(traj.fields) - set(units)
            if missing:
                raise ValueError(f"{path}: metadata['fields'] gives no units for {sorted(missing)}")
            group = f.create_group(name)
            group.create_dataset("mesh_pos", data=traj.mesh_pos.astype(np.float32)).attrs["units"] = "m"
            group.create_dataset("cells", data=traj.cells.astype(np.int32))
            group.create_dataset("node_type", data=traj.node_type.astype(np.int32))
            for key, value in traj.fields.items():
                data = group.create_dataset(key, data=value.astype(np.float32), compression="lzf",
                                            chunks=(1, *value.shape[1:]), **CHECKSUM)
                data.attrs["units"] = units[key]
    return count


class MeshTrajectoryReader(SchemaReader):
    """Random access: ``len(reader)``, ``reader[i] -> MeshTrajectory`` (checked), ``reader.metadata``."""

    schema, version, what = SCHEMA, SCHEMA_VERSION, "mesh trajectory file"

    def check_metadata(self) -> None:
        dt, units = self.metadata.get("dt"), self.metadata.get("fields")
        if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
            raise ValueError(f"{self.path}: metadata 'dt' is {dt!r}, expected seconds between frames (a positive "
                             "number)")
        if not (isinstance(units, dict) and all(isinstance(u, str) and u for u in units.values())):
            raise ValueError(f"{self.path}: metadata 'fields' is {units!r}, expected {{field name: units}}")

    def __getitem__(self, index: int) -> MeshTrajectory:
        with corruption_as_value_error(self.path):
            key, group = self.group(index)
            missing = [k for k in MESH_KEYS if k not in group]
            if missing:
                raise ValueError(f"{self.path}: trajectory {key} has no {', '.join(missing)} dataset")
            where = f"trajectory {key}"
            fields = {k: read_array(self.path, group[k], f"{where}: '{k}'") for k in group if k not in MESH_KEYS}
            for k in fields:
                units = group[k].attrs.get("units")
                if units != self.metadata["fields"].get(k):
                    raise ValueError(f"{self.path}: {where}: '{k}' has units {units!r}, metadata 'fields' says "
                                     f"{self.metadata['fields'].get(k)!r} (the schema requires both, equal)")
            traj = MeshTrajectory(read_array(self.path, group["mesh_pos"], f"{where}: 'mesh_pos'"),
                                  read_array(self.path, group["cells"], f"{where}: 'cells'", kind="i").astype(np.int64),
                                  read_array(self.path, group["node_type"], f"{where}: 'node_type'", kind="i")
                                  .astype(np.int64), fields)
            traj.check(f"{self.path}: trajectory {key}")
            return traj
