import h5py
import numpy as np
import pytest

from datasets.trajectories import Trajectory, TrajectoryReader, write_trajectories


def _trajectories(seed=0):
    rng = np.random.default_rng(seed)
    return [Trajectory(rng.random((5, n, 2)).astype(np.float32), rng.integers(0, 3, n)) for n in (4, 7)]


def test_round_trip_is_exact(tmp_path):
    trajs = _trajectories()
    meta = {"dim": 2, "dt": 0.0025, "bounds": [[0.1, 0.9], [0.1, 0.9]]}
    assert write_trajectories(tmp_path / "train.h5", trajs, meta) == 2
    with TrajectoryReader(tmp_path / "train.h5") as reader:
        assert len(reader) == 2 and reader.metadata == meta
        for want, got in zip(trajs, (reader[0], reader[1])):
            assert np.array_equal(want.position, got.position)
            assert np.array_equal(want.particle_type, got.particle_type)
    with h5py.File(tmp_path / "train.h5") as f:
        assert f.attrs["schema_version"] == 1 and f["00000/position"].attrs["units"] == "m"


def test_bad_trajectory_leaves_no_file(tmp_path):
    def gen():
        yield _trajectories()[0]
        raise RuntimeError("solver blew up")
    with pytest.raises(RuntimeError):
        write_trajectories(tmp_path / "x.h5", gen(), {})
    assert not list(tmp_path.iterdir())


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="particle_type"):
        Trajectory(np.zeros((3, 4, 2)), np.zeros(5))


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        TrajectoryReader(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.h5"):
        TrajectoryReader(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["schema"] = "radar"
    with pytest.raises(ValueError, match="other.h5.*schema"):
        TrajectoryReader(tmp_path / "other.h5")
    write_trajectories(tmp_path / "t.h5", _trajectories(), {})
    with h5py.File(tmp_path / "t.h5", "a") as f:
        del f["00001/particle_type"]
    with pytest.raises(ValueError, match="t.h5: trajectory 00001 has no 'particle_type'"):
        TrajectoryReader(tmp_path / "t.h5")[1]


def test_broken_values_anywhere_are_refused_by_file_trajectory_and_field(tmp_path):
    """One inf in a late frame, integer positions, zero normalisation statistics, corrupted compressed bytes."""
    path = tmp_path / "t.h5"
    write_trajectories(path, _trajectories(), {"dim": 2})
    with h5py.File(path, "a") as f:
        f["00001/position"][3, 2, 1] = np.inf
    with TrajectoryReader(path) as reader:
        reader[0]
        with pytest.raises(ValueError, match=r"t.h5: trajectory 00001: 'position' holds NaN or infinite .*\(3, 2, 1\)"):
            reader[1]
    with h5py.File(path, "a") as f:
        del f["00001/position"]
        f["00001/position"] = np.zeros((5, 7, 2), dtype=np.int64)
    with TrajectoryReader(path) as reader, pytest.raises(ValueError, match="dtype int64, expected floating-point"):
        reader[1]
    write_trajectories(path, _trajectories(), {"dim": 2, "acc_std": [0.0, 1e-4]})
    with pytest.raises(ValueError, match="metadata 'acc_std' is .*expected 2 positive finite numbers"):
        TrajectoryReader(path)


@pytest.mark.parametrize("key, value, expected", [
    ("dt", "0.01", "a positive finite number"), ("dt", -0.01, "a positive finite number"),
    ("default_connectivity_radius", "one", "a positive finite number"),
    ("bounds", [[0.0, 1.0]], r"\[2, 2\] finite \[low, high\] pairs"),
    ("bounds", [[0.0, 1.0], [1.0, 0.0]], r"\[2, 2\] .* with low < high"), ("vel_mean", [0.0, None], "2 finite numbers"),
    ("vel_std", ["a", "b"], "2 positive finite numbers"), ("dim", 4, "1, 2 or 3")])
def test_simulator_metadata_of_the_wrong_kind_is_named(tmp_path, key, value, expected):
    write_trajectories(tmp_path / "m.h5", _trajectories(), {"dim": 2, key: value})
    with pytest.raises(ValueError, match=rf"m\.h5: metadata '{key}' is .*expected {expected}"):
        TrajectoryReader(tmp_path / "m.h5")


def test_a_corrupted_chunk_fails_its_checksum(tmp_path):
    path = tmp_path / "t.h5"
    big = Trajectory(np.random.default_rng(0).random((200, 50, 2)).astype(np.float32), np.zeros(50, np.int64))
    write_trajectories(path, [big], {"dim": 2})
    with h5py.File(path) as f:
        offset = f["00000/position"].id.get_offset() if f["00000/position"].chunks is None else \
            f["00000/position"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    with TrajectoryReader(path) as reader, pytest.raises(ValueError, match="cannot be read, the file is corrupted"):
        reader[0]


def test_a_pipe_is_refused_instead_of_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.h5")
    with pytest.raises(ValueError, match="not a regular file"):
        TrajectoryReader(tmp_path / "pipe.h5")
