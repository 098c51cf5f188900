"""DeepMind's simulation datasets, read from their TFRecords and imported into the suite's HDF5 schemas.

- **learning_to_simulate** (Sanchez-Gonzalez et al. 2020: WaterDrop, Sand, Goop, ...): a folder with
  ``metadata.json`` and ``{train,valid,test}.tfrecord``; each record a ``tf.train.SequenceExample`` with context
  ``key`` (int64) and ``particle_type`` (the bytes of an int64 array ``[N]``) and the feature list ``position``
  (per step, the bytes of float32 ``[N * dim]``). Imported as ``particle-trajectories`` with the
  ``metadata.json`` fields as metadata (bounds, radius, dt and the normalisation statistics the GNS needs).
  Datasets with a per-step ``step_context`` are refused (the schema has no place for it).
- **MeshGraphNets** (Pfaff et al. 2021: cylinder_flow, flag_simple, ...): a folder with ``meta.json`` and
  ``{train,valid,test}.tfrecord``; each record a ``tf.train.Example`` whose features are the raw bytes of each
  field, shaped and typed by ``meta.json`` (``static`` fields ``[1, N, F]``, ``dynamic`` ones ``[T, N, F]``).
  Imported as ``mesh-trajectories``: ``mesh_pos``, ``cells``, ``node_type`` and every dynamic field, with
  ``dt`` from ``meta.json``. Remeshing datasets (``dynamic_varlen`` fields) are refused.

``physml data import learning-to-simulate|meshgraphnets SRC --out DIR`` writes ``DIR/{split}.h5``, which the
sims trainers read (``physml sims train-gns --data DIR``, ``train-mgn --data DIR``).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from datasets.atomic import atomic_folder
from datasets.meshes import MeshTrajectory, write_mesh_trajectories
from datasets.tfrecord import Example, SequenceExample, array, parse, raw_bytes, records
from datasets.trajectories import Trajectory, check_metadata, require_metadata, write_trajectories

SPLITS = ("train", "valid", "test")
# units of MeshGraphNets' fields (SI, as their solvers ran); other fields keep the source's unnamed units
MESH_UNITS = {"world_pos": "m", "velocity": "m/s", "pressure": "m^2/s^2", "density": "kg/m^3",
              "stress": "Pa"}


def _json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; expected DeepMind's dataset folder with this file and "
                                "{train,valid,test}.tfrecord")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return raw


def _splits(folder: Path) -> list[str]:
    found = [s for s in SPLITS if (folder / f"{s}.tfrecord").is_file()]
    if "train" not in found:
        raise FileNotFoundError(f"{folder}: no train.tfrecord")
    return found


def particle_trajectories(path: str | os.PathLike, metadata: dict) -> Iterator[Trajectory]:
    """The trajectories of one learning_to_simulate TFRecord file."""
    dim = int(metadata["dim"])
    for index, data in enumerate(records(path)):
        where = f"{path}: record {index}"
        example = parse(SequenceExample, data, where)
        context, steps = example.context.feature, example.feature_lists.feature_list
        if "step_context" in steps:
            raise ValueError(f"{where}: has a per-step 'step_context', which the particle-trajectories schema "
                             "cannot hold")
        if "particle_type" not in context or "position" not in steps:
            raise ValueError(f"{where}: expected context 'particle_type' and feature list 'position'")
        particle_type = array(raw_bytes(context["particle_type"], f"{where}: particle_type"), "int64", where)
        frames = [array(raw_bytes(f, f"{where}: position"), "float32", where) for f in steps["position"].feature]
        n = len(particle_type)
        if not frames or any(len(f) != n * dim for f in frames):
            raise ValueError(f"{where}: every position step must hold {n} particles x {dim} coordinates")
        yield Trajectory(np.stack(frames).reshape(len(frames), n, dim), particle_type)


def import_learning_to_simulate(src: str, out_dir: str, limit: int | None = None,
                                progress: bool = True) -> list[Path]:
    """Import a learning_to_simulate dataset (``metadata.json`` + ``{train,valid,test}.tfrecord``) as
    ``{split}.h5`` particle trajectories.

    Args:
        src: the dataset folder as DeepMind distributes it.
        out_dir: where ``train.h5``, ``valid.h5`` and ``test.h5`` go.
        limit: import only the first trajectories of each split (None: all).
        progress: show a progress bar.
    """
    folder = Path(src)
    metadata = _json(folder / "metadata.json")
    require_metadata(folder / "metadata.json", metadata, ("dim", "bounds", "default_connectivity_radius",
                                                          "vel_mean", "vel_std", "acc_mean", "acc_std"))
    check_metadata(folder / "metadata.json", metadata)
    metadata = {**metadata, "source": f"DeepMind learning_to_simulate ({folder.name})",
                "units": {"position": "the source's (DeepMind's boxes are dimensionless)"}}
    written = []
    with atomic_folder(out_dir) as tmp:
        for split in _splits(folder):
            trajectories = tqdm(islice(particle_trajectories(folder / f"{split}.tfrecord", metadata), limit),
                                desc=f"import {split}", unit="trajectory", disable=not progress)
            write_trajectories(tmp / f"{split}.h5", trajectories, metadata, units="1")
            written.append(Path(out_dir) / f"{split}.h5")
    return written


def mesh_trajectories(path: str | os.PathLike, meta: dict) -> Iterator[MeshTrajectory]:
    """The trajectories of one MeshGraphNets TFRecord file, shaped by its ``meta.json``."""
    features = meta.get("features")
    if not isinstance(features, dict) or not {"mesh_pos", "cells", "node_type"} <= set(features):
        raise ValueError(f"{path}: meta.json must describe 'features' including mesh_pos, cells and node_type")
    varlen = [k for k, f in features.items() if f.get("type") not in ("static", "dynamic")]
    if varlen:
        raise ValueError(f"{path}: fields {varlen} change size over time (remeshing datasets); only static and "
                         "dynamic fields can be imported")
    for index, data in enumerate(records(path)):
        where = f"{path}: record {index}"
        example = parse(Example, data, where).features.feature
        arrays = {}
        for name, spec in features.items():
            if name not in example:
                raise ValueError(f"{where}: has no feature {name!r} that meta.json describes")
            values = array(raw_bytes(example[name], f"{where}: {name}"), spec.get("dtype", "float32"), where)
            try:
                arrays[name] = values.reshape(spec["shape"])
            except ValueError:
                raise ValueError(f"{where}: {name!r} has {values.size} values, which do not fit meta.json's shape "
                                 f"{spec['shape']}") from None
        static = {k: arrays[k][0] for k in ("mesh_pos", "cells", "node_type")}
        fields = {k: v.astype(np.float32) for k, v in arrays.items() if features[k]["type"] == "dynamic"}
        yield MeshTrajectory(static["mesh_pos"].astype(np.float32), static["cells"].astype(np.int32),
                             static["node_type"].reshape(-1).astype(np.int32), fields)


def import_meshgraphnets(src: str, out_dir: str, limit: int | None = None, progress: bool = True) -> list[Path]:
    """Import a MeshGraphNets dataset (``meta.json`` + ``{train,valid,test}.tfrecord``) as ``{split}.h5`` mesh
    trajectories.

    Args:
        src: the dataset folder as DeepMind distributes it (cylinder_flow, flag_simple, ...).
        out_dir: where ``train.h5``, ``valid.h5`` and ``test.h5`` go.
        limit: import only the first trajectories of each split (None: all).
        progress: show a progress bar.
    """
    folder = Path(src)
    meta = _json(folder / "meta.json")
    if not isinstance(meta.get("dt"), (int, float)) or not meta["dt"] > 0:
        raise ValueError(f"{folder / 'meta.json'}: 'dt' must be a positive number of seconds, got {meta.get('dt')!r}")
    dynamic = [k for k, f in meta.get("features", {}).items() if isinstance(f, dict) and f.get("type") == "dynamic"]
    metadata = {"dt": float(meta["dt"]), "fields": {k: MESH_UNITS.get(k, "the source's") for k in dynamic},
                "solver": f"deepmind {meta.get('simulator', folder.name)}",
                "source": f"DeepMind MeshGraphNets ({folder.name})"}
    written = []
    with atomic_folder(out_dir) as tmp:
        for split in _splits(folder):
            trajectories = tqdm(islice(mesh_trajectories(folder / f"{split}.tfrecord", meta), limit),
                                desc=f"import {split}", unit="trajectory", disable=not progress)
            write_mesh_trajectories(tmp / f"{split}.h5", trajectories, {**metadata, "split": split})
            written.append(Path(out_dir) / f"{split}.h5")
    return written
