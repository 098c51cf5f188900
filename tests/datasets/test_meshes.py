"""Mesh-trajectory HDF5: exact round trip, units, and bad input named without leaving a partial file."""
import json

import h5py
import numpy as np
import pytest

from datasets.meshes import HANDLE, NORMAL, MeshTrajectory, MeshTrajectoryReader, write_mesh_trajectories


def square(frames=4, seed=0):
    rng = np.random.default_rng(seed)
    pos = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], float)
    cells = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    types = np.array([HANDLE, NORMAL, NORMAL, HANDLE, NORMAL])
    return MeshTrajectory(pos, cells, types, {"world_pos": rng.normal(size=(frames, 5, 3)).astype(np.float32)})


def test_round_trip_is_exact_with_units(tmp_path):
    path = tmp_path / "train.h5"
    trajs = [square(seed=0), square(frames=6, seed=1)]
    assert write_mesh_trajectories(path, trajs, {"dt": 0.02, "fields": {"world_pos": "m"}}) == 2
    with MeshTrajectoryReader(path) as reader:
        assert len(reader) == 2 and reader.metadata["dt"] == 0.02
        for i, expected in enumerate(trajs):
            got = reader[i]
            for key in ("mesh_pos", "cells", "node_type"):
                assert np.array_equal(getattr(got, key), getattr(expected, key))
            assert np.array_equal(got.fields["world_pos"], expected.fields["world_pos"])
    with h5py.File(path) as f:
        assert f["00000/world_pos"].attrs["units"] == "m" and f["00000/mesh_pos"].attrs["units"] == "m"


@pytest.mark.parametrize("change, message", [
    (lambda t: MeshTrajectory(t.mesh_pos, t.cells, t.node_type + 9, t.fields), "node_type values"),
    (lambda t: MeshTrajectory(t.mesh_pos, np.vstack([t.cells, [[0, 1, 1]]]), t.node_type, t.fields), "degenerate"),
    (lambda t: MeshTrajectory(np.vstack([t.mesh_pos, [[3.0, 3.0]]]), t.cells, np.append(t.node_type, 0), {}),
     "belong to no cell"),
    (lambda t: MeshTrajectory(t.mesh_pos, t.cells, t.node_type, {"world_pos": t.fields["world_pos"][:, :4]}),
     "field 'world_pos' must be"),
    (lambda t: MeshTrajectory(t.mesh_pos, t.cells, t.node_type, {"world_pos": t.fields["world_pos"] * np.nan}),
     "NaN"),
    (lambda t: MeshTrajectory(t.mesh_pos, t.cells, t.node_type, {"velocity": t.fields["world_pos"]}), "no units"),
])
def test_bad_trajectories_are_named_and_leave_no_file(tmp_path, change, message):
    path = tmp_path / "bad.h5"
    with pytest.raises(ValueError, match=message) as err:
        write_mesh_trajectories(path, [square(), change(square())], {"dt": 0.02, "fields": {"world_pos": "m"}})
    assert "bad.h5" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_reader_names_the_file_for_a_corrupted_mesh(tmp_path):
    path = tmp_path / "t.h5"
    write_mesh_trajectories(path, [square()], {"dt": 0.02, "fields": {"world_pos": "m"}})
    with h5py.File(path, "a") as f:
        f["00000/cells"][0] = [0, 0, 1]
    with MeshTrajectoryReader(path) as reader, pytest.raises(ValueError, match="t.h5: trajectory 00000: 1 degenerate"):
        reader[0]
    with pytest.raises(FileNotFoundError, match="nothing.h5"):
        MeshTrajectoryReader(tmp_path / "nothing.h5")


def test_fields_without_units_and_bad_frame_intervals_are_named(tmp_path):
    path = tmp_path / "u.h5"
    write_mesh_trajectories(path, [square()], {"dt": 0.02, "fields": {"world_pos": "m"}})
    with h5py.File(path, "r+") as f:
        del f["00000/world_pos"].attrs["units"]
    with MeshTrajectoryReader(path) as reader, pytest.raises(
            ValueError, match=r"u\.h5: trajectory 00000: 'world_pos' has units None, metadata 'fields' says 'm'"):
        reader[0]
    for metadata, message in [({"dt": "0.02", "fields": {"world_pos": "m"}}, "metadata 'dt' is '0.02'"),
                              ({"dt": 0.02, "fields": ["m"]}, r"metadata 'fields' is \['m'\]")]:
        with h5py.File(path, "r+") as f:
            f.attrs["metadata"] = json.dumps(metadata)
        with pytest.raises(ValueError, match=rf"u\.h5: {message}"):
            MeshTrajectoryReader(path)
