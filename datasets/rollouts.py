"""Rollout files of learned simulators, one per rolled-out trajectory (schemas in docs/schemas.md):

- ``particle-rollout``: a learned particle simulator (GNS) beside the solver's positions;
- ``mesh-rollout``: a field on a mesh (MeshGraphNets: velocity or world position) beside the solver's.

Both carry the trajectory file's metadata, the training run's config and the code version, are written
atomically, and read back into the dataclasses they were written from.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from datasets.hdf5 import atomic_hdf5, check_version, corruption_as_value_error, read_array

PARTICLE_SCHEMA, MESH_SCHEMA, SCHEMA_VERSION = "particle-rollout", "mesh-rollout", 1


@dataclass
class ParticleRolloutFile:
    """What a ``particle-rollout`` file holds; positions in m, ``predicted``/``ground_truth`` ``[T, N, D]``."""

    initial_positions: np.ndarray    # [C, N, D] the ground-truth frames the rollout starts from
    predicted: np.ndarray            # [T, N, D]
    ground_truth: np.ndarray         # [T, N, D]
    particle_type: np.ndarray        # [N]
    errors: dict[str, np.ndarray]    # per-step errors (docs/schemas.md)
    seconds_per_frame: float
    diverged_at: int | None
    metadata: dict = field(default_factory=dict)
    model_config: dict = field(default_factory=dict)
    code_version: str = "unknown"


@dataclass
class MeshRolloutFile:
    """What a ``mesh-rollout`` file holds: ``predicted``/``ground_truth`` ``[T, N, F]`` of ``field`` (in
    ``units``) from frame ``start_frame + 1`` on, and the trajectory's mesh."""

    field: str
    units: str
    start_frame: int
    predicted: np.ndarray
    ground_truth: np.ndarray
    squared_error: np.ndarray        # [T] mean over nodes and components
    mesh_pos: np.ndarray             # [N, 2] m
    cells: np.ndarray                # [C, 3]
    node_type: np.ndarray            # [N]
    seconds_per_frame: float
    diverged_at: int | None
    metadata: dict = field(default_factory=dict)
    model_config: dict = field(default_factory=dict)
    code_version: str = "unknown"


def code_version() -> str:
    """The git commit of the code that made a file, or 'unknown' outside a checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _provenance(f: h5py.File, schema: str, r: ParticleRolloutFile | MeshRolloutFile) -> None:
    f.attrs.update({"schema": schema, "schema_version": SCHEMA_VERSION, "metadata": json.dumps(r.metadata),
                    "model_config": json.dumps(r.model_config, default=str), "code_version": r.code_version,
                    "seconds_per_frame": r.seconds_per_frame,
                    "diverged_at": -1 if r.diverged_at is None else r.diverged_at})


def write_particle_rollout(path: str | os.PathLike, rollout: ParticleRolloutFile) -> Path:
    """Write ``rollout`` atomically as a ``particle-rollout`` file."""
    with atomic_hdf5(path) as f:
        _provenance(f, PARTICLE_SCHEMA, rollout)
        for name, data in (("initial_positions", rollout.initial_positions), ("predicted_rollout", rollout.predicted),
                           ("ground_truth_rollout", rollout.ground_truth)):
            f.create_dataset(name, data=data.astype(np.float32), compression="lzf").attrs["units"] = "m"
        f.create_dataset("particle_types", data=rollout.particle_type.astype(np.int64))
        for name, data in rollout.errors.items():
            f.create_dataset(f"errors/{name}", data=data)
    return Path(path)


def write_mesh_rollout(path: str | os.PathLike, rollout: MeshRolloutFile) -> Path:
    """Write ``rollout`` atomically as a ``mesh-rollout`` file."""
    with atomic_hdf5(path) as f:
        _provenance(f, MESH_SCHEMA, rollout)
        f.attrs.update({"field": rollout.field, "start_frame": rollout.start_frame})
        f.create_dataset("mesh_pos", data=rollout.mesh_pos.astype(np.float32)).attrs["units"] = "m"
        f.create_dataset("cells", data=rollout.cells.astype(np.int32))
        f.create_dataset("node_type", data=rollout.node_type.astype(np.int32))
        for name, data in (("predicted_rollout", rollout.predicted), ("ground_truth_rollout", rollout.ground_truth)):
            f.create_dataset(name, data=data.astype(np.float32), compression="lzf").attrs["units"] = rollout.units
        f.create_dataset("errors/squared_error", data=rollout.squared_error).attrs["units"] = f"({rollout.units})^2"
    return Path(path)


def _open(path: str | os.PathLike, schema: str) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {schema} file")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file; expected a {schema} file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
    try:
        with corruption_as_value_error(path):
            found = f.attrs.get("schema")
            if found != schema:
                raise ValueError(f"{path}: attribute 'schema' is {found!r}, expected {schema!r}")
            check_version(path, f.attrs.get("schema_version", -1), SCHEMA_VERSION)
    except ValueError:
        f.close()
        raise
    return f


def _common(f: h5py.File) -> dict:
    diverged = int(f.attrs["diverged_at"])
    return {"seconds_per_frame": float(f.attrs["seconds_per_frame"]), "diverged_at": None if diverged < 0 else diverged,
            "metadata": json.loads(f.attrs["metadata"]), "model_config": json.loads(f.attrs["model_config"]),
            "code_version": str(f.attrs["code_version"])}


def _reader(path: str | os.PathLike, f: h5py.File):
    """``read(key, kind="f", finite=True)``: a dataset of ``f`` through the checked :func:`read_array`."""
    def read(key: str, kind: str = "f", finite: bool = True) -> np.ndarray:
        return read_array(path, f[key], repr(key), kind, finite)
    return read


def read_particle_rollout(path: str | os.PathLike) -> ParticleRolloutFile:
    """A ``particle-rollout`` file; errors name the file and what was wrong."""
    with _open(path, PARTICLE_SCHEMA) as f, corruption_as_value_error(path):
        try:
            read = _reader(path, f)
            return ParticleRolloutFile(  # a diverged rollout holds NaN from its divergence on
                initial_positions=read("initial_positions"), predicted=read("predicted_rollout", finite=False),
                ground_truth=read("ground_truth_rollout"), particle_type=read("particle_types", "i"),
                errors={k: read(f"errors/{k}", finite=False) for k in f["errors"]}, **_common(f))
        except KeyError as err:
            raise ValueError(f"{path}: missing {err} of the {PARTICLE_SCHEMA} schema") from None


def read_mesh_rollout(path: str | os.PathLike) -> MeshRolloutFile:
    """A ``mesh-rollout`` file; errors name the file and what was wrong."""
    with _open(path, MESH_SCHEMA) as f, corruption_as_value_error(path):
        try:
            read = _reader(path, f)
            return MeshRolloutFile(
                field=str(f.attrs["field"]), units=str(f["predicted_rollout"].attrs["units"]),
                start_frame=int(f.attrs["start_frame"]), predicted=read("predicted_rollout", finite=False),
                ground_truth=read("ground_truth_rollout"), squared_error=read("errors/squared_error", finite=False),
                mesh_pos=read("mesh_pos"), cells=read("cells", "i"), node_type=read("node_type", "i"), **_common(f))
        except KeyError as err:
            raise ValueError(f"{path}: missing {err} of the {MESH_SCHEMA} schema") from None
