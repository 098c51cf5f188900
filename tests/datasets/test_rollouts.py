"""Rollout files: each schema reads back what was written; bad files fail clearly and leave nothing behind."""
import h5py
import numpy as np
import pytest

from datasets.rollouts import (MeshRolloutFile, ParticleRolloutFile, read_mesh_rollout, read_particle_rollout,
                               write_mesh_rollout, write_particle_rollout)


def particle_rollout() -> ParticleRolloutFile:
    rng = np.random.default_rng(0)
    return ParticleRolloutFile(rng.random((6, 5, 2)).astype(np.float32), rng.random((4, 5, 2)).astype(np.float32),
                               rng.random((4, 5, 2)).astype(np.float32), np.array([5, 5, 3, 5, 5]),
                               {"position_mse": rng.random(4)}, 0.01, 3, {"dt": 0.01}, {"recipe": "gns"}, "abc")


def mesh_rollout() -> MeshRolloutFile:
    rng = np.random.default_rng(1)
    field = rng.random((2, 3, 4, 2)).astype(np.float32)
    mesh_pos = rng.random((4, 2)).astype(np.float32)
    return MeshRolloutFile("velocity", "m/s", 0, field[0], field[1], rng.random(3), mesh_pos,
                           np.array([[0, 1, 2], [1, 2, 3]], dtype=np.int32), np.zeros(4, dtype=np.int32), 0.02, None)


def assert_same(a, b):
    for name, value in vars(a).items():
        other = getattr(b, name)
        if isinstance(value, dict):
            assert value.keys() == other.keys() and all(np.array_equal(value[k], other[k]) for k in value)
        else:
            assert np.array_equal(value, other) if isinstance(value, np.ndarray) else value == other, name


def test_particle_rollout_round_trip(tmp_path):
    original = particle_rollout()
    write_particle_rollout(tmp_path / "r.h5", original)
    assert_same(read_particle_rollout(tmp_path / "r.h5"), original)


def test_mesh_rollout_round_trip(tmp_path):
    original = mesh_rollout()
    write_mesh_rollout(tmp_path / "m.h5", original)
    assert_same(read_mesh_rollout(tmp_path / "m.h5"), original)


def test_wrong_or_broken_files_fail_clearly(tmp_path):
    write_mesh_rollout(tmp_path / "m.h5", mesh_rollout())
    with pytest.raises(ValueError, match="'mesh-rollout', expected 'particle-rollout'"):
        read_particle_rollout(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f["cells"]
    with pytest.raises(ValueError, match="missing .*cells"):
        read_mesh_rollout(tmp_path / "m.h5")
    with pytest.raises(FileNotFoundError):
        read_mesh_rollout(tmp_path / "absent.h5")


def test_a_failed_write_leaves_no_file(tmp_path):
    broken = particle_rollout()
    broken.errors = {"position_mse": object()}
    with pytest.raises(TypeError):
        write_particle_rollout(tmp_path / "r.h5", broken)
    assert not list(tmp_path.iterdir())
