"""Fuzzing every reader: arbitrary bytes, and valid files with bytes overwritten, either read or fail with a
clear error (ValueError or FileNotFoundError, naming the file) — never another exception, never a hang.

Derandomized (hypothesis draws the same cases every run) and sized for CI.
"""
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.meshes import MeshTrajectory, MeshTrajectoryReader, write_mesh_trajectories
from datasets.radar import open_radar, radar_dataset, write_radar
from datasets.root import DataConfig, RootWriter, read
from datasets.rollouts import ParticleRolloutFile, read_particle_rollout, write_particle_rollout
from datasets.showers import CaloGeometry, read_showers, write_showers
from datasets.trajectories import Trajectory, TrajectoryReader, write_trajectories
from training.checkpoint import load_checkpoint, save_checkpoint

CLEAR = (ValueError, FileNotFoundError)
GEOMETRY = CaloGeometry(n_layers=3, n_alpha=4, n_radial=2)
ROOT_CONFIG = DataConfig.from_dict({"treename": "t", "branches": ["a", "b"], "new_variables": {"c": "a * b"}})
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="physml-fuzz-"))


@cache
def valid_files() -> dict[str, Path]:
    """One small valid file per format, made once."""
    folder, rng = _folder(), np.random.default_rng(0)
    files = {"trajectories": folder / "t.h5", "meshes": folder / "m.h5", "showers": folder / "s.h5",
             "rollout": folder / "r.h5", "checkpoint": folder / "run" / "checkpoints" / "step_00000001.pt",
             "root": folder / "x.root", "radar": folder / "radar.nc"}
    write_trajectories(files["trajectories"], [Trajectory(rng.random((6, 8, 2)).astype(np.float32),
                                                          np.zeros(8, np.int64))], {"dim": 2, "acc_std": [1.0, 1.0]})
    mesh = MeshTrajectory(rng.random((4, 2)).astype(np.float32), np.array([[0, 1, 2], [1, 2, 3]]), np.zeros(4, int),
                          {"velocity": rng.random((3, 4, 2)).astype(np.float32)})
    write_mesh_trajectories(files["meshes"], [mesh], {"fields": {"velocity": "m/s"}})
    write_showers(files["showers"], rng.uniform(1e3, 1e6, (6, 1)), rng.random((6, GEOMETRY.n_voxels)), GEOMETRY)
    write_particle_rollout(files["rollout"], ParticleRolloutFile(
        rng.random((2, 3, 2)), rng.random((4, 3, 2)), rng.random((4, 3, 2)), np.zeros(3, np.int64),
        {"position_mse": rng.random(4)}, 0.1, None))
    save_checkpoint(folder / "run", 1, {"model": torch.nn.Linear(3, 2).state_dict(), "step": 1})
    with RootWriter(files["root"]) as out:
        out.extend("t", {"a": rng.random(50), "b": rng.random(50)})
    write_radar(radar_dataset(rng.random((3, 8, 8)).astype(np.float32), "2024-01-01T00:00"), files["radar"])
    return files


READERS = {
    "trajectories": lambda p: [r[i] for r in [TrajectoryReader(p)] for i in range(len(r))],
    "meshes": lambda p: [r[i] for r in [MeshTrajectoryReader(p)] for i in range(len(r))],
    "showers": lambda p: read_showers(p, GEOMETRY),
    "rollout": read_particle_rollout,
    "checkpoint": load_checkpoint,
    "root": lambda p: read(p, ROOT_CONFIG),
    "radar": lambda p: open_radar(p, check_data=True),
}


def read_or_fail_clearly(kind: str, path: Path) -> None:
    try:
        READERS[kind](path)
    except CLEAR as err:
        assert path.name in str(err), f"{kind}: the error does not name the file: {err}"


@pytest.mark.parametrize("kind", sorted(READERS))
@FUZZ
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes(kind, data):
    path = _folder() / valid_files()[kind].name
    path.write_bytes(data)
    read_or_fail_clearly(kind, path)


@pytest.mark.parametrize("kind", sorted(READERS))
@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=16)),
                      min_size=1, max_size=4))
def test_valid_files_with_bytes_overwritten(kind, edits):
    original = valid_files()[kind]
    data = bytearray(original.read_bytes())
    for where, chunk in edits:
        start = int(where * len(data))
        data[start:start + len(chunk)] = chunk[:len(data) - start]
    path = _folder() / original.name
    path.write_bytes(bytes(data))
    read_or_fail_clearly(kind, path)


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_data_configs(text):
    path = _folder() / "config.yaml"
    path.write_text(text)
    try:
        DataConfig.from_yaml(path)
    except ValueError as err:
        assert "config.yaml" in str(err)
