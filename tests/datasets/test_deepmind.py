"""DeepMind's TFRecord datasets: files written in their exact format (by the ``tfrecord`` package's own writer,
an implementation independent of our reader) import into our schemas value for value, damaged files fail
with the file named and nothing written, and the sims trainers train on the import for a few steps."""
import json

import numpy as np
import pytest
from tfrecord.writer import TFRecordWriter

from datasets.deepmind import import_learning_to_simulate, import_meshgraphnets
from datasets.meshes import MeshTrajectoryReader
from datasets.tfrecord import records
from datasets.trajectories import TrajectoryReader
from physml.cli import main

SPLITS = {"train": 3, "valid": 1, "test": 1}


def particle_folder(folder, frames=12, particles=24, dim=2, seed=0):
    """A learning_to_simulate dataset as DeepMind distributes it; returns the trajectories per split."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    written = {}
    for split, count in SPLITS.items():
        writer = TFRecordWriter(str(folder / f"{split}.tfrecord"))
        written[split] = []
        for key in range(count):
            start = rng.uniform(0.2, 0.8, (particles, dim))
            velocity = rng.normal(0, 0.003, (particles, dim))
            position = (start + velocity * np.arange(frames)[:, None, None]
                        - 0.5e-4 * np.arange(frames)[:, None, None] ** 2 * np.eye(dim)[-1]).astype(np.float32)
            kind = np.where(rng.random(particles) < 0.2, 3, 5).astype(np.int64)
            writer.write({"key": (key, "int"), "particle_type": (kind.tobytes(), "byte")},
                         {"position": ([p.tobytes() for p in position], "byte")})
            written[split].append((position, kind))
        writer.close()
    flat = np.concatenate([p for p, _ in written["train"]])
    vel, acc = np.diff(flat, axis=0), np.diff(flat, n=2, axis=0)
    metadata = {"bounds": [[0.1, 0.9]] * dim, "sequence_length": frames, "default_connectivity_radius": 0.1,
                "dim": dim, "dt": 0.0025, "vel_mean": vel.mean((0, 1)).tolist(), "vel_std": vel.std((0, 1)).tolist(),
                "acc_mean": acc.mean((0, 1)).tolist(), "acc_std": acc.std((0, 1)).tolist()}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return written


def mesh_folder(folder, frames=8, nx=6, ny=4, seed=0):
    """A MeshGraphNets cylinder_flow-like dataset (static mesh fields [1, N, F], dynamic [T, N, F])."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    x, y = np.meshgrid(np.linspace(0, 1.6, nx), np.linspace(0, 0.41, ny), indexing="ij")
    mesh_pos = np.column_stack([x.ravel(), y.ravel()]).astype(np.float32)
    index = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    cells = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])]).astype(np.int32)
    node_type = np.zeros(nx * ny, np.int32)
    node_type[index[0]] = 4  # inflow
    node_type[index[-1]] = 5  # outflow
    node_type[index[1:-1, 0]] = node_type[index[1:-1, -1]] = 6  # walls
    n = nx * ny
    meta = {"simulator": "comsol", "dt": 0.01, "collision_radius": None, "trajectory_length": frames,
            "field_names": ["cells", "mesh_pos", "node_type", "velocity", "pressure"],
            "features": {"cells": {"type": "static", "shape": [1, -1, 3], "dtype": "int32"},
                         "mesh_pos": {"type": "static", "shape": [1, -1, 2], "dtype": "float32"},
                         "node_type": {"type": "static", "shape": [1, -1, 1], "dtype": "int32"},
                         "velocity": {"type": "dynamic", "shape": [frames, -1, 2], "dtype": "float32"},
                         "pressure": {"type": "dynamic", "shape": [frames, -1, 1], "dtype": "float32"}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    written = {}
    for split, count in SPLITS.items():
        writer = TFRecordWriter(str(folder / f"{split}.tfrecord"))
        written[split] = []
        for _ in range(count):
            velocity = (rng.normal(0, 0.1, (frames, n, 2)) + [1.0, 0.0]).astype(np.float32)
            pressure = rng.normal(0, 0.1, (frames, n, 1)).astype(np.float32)
            writer.write({"cells": (cells[None].tobytes(), "byte"), "mesh_pos": (mesh_pos[None].tobytes(), "byte"),
                          "node_type": (node_type[None, :, None].tobytes(), "byte"),
                          "velocity": (velocity.tobytes(), "byte"), "pressure": (pressure.tobytes(), "byte")})
            written[split].append((velocity, pressure))
        writer.close()
    return written, (mesh_pos, cells, node_type)


def test_learning_to_simulate_imports_value_for_value(tmp_path):
    written = particle_folder(tmp_path / "WaterDrop")
    files = import_learning_to_simulate(str(tmp_path / "WaterDrop"), str(tmp_path / "out"), progress=False)
    assert [f.name for f in files] == ["train.h5", "valid.h5", "test.h5"]
    source = json.loads((tmp_path / "WaterDrop" / "metadata.json").read_text())
    for split, trajectories in written.items():
        with TrajectoryReader(tmp_path / "out" / f"{split}.h5") as reader:
            assert len(reader) == len(trajectories)
            assert {k: reader.metadata[k] for k in source} == source
            for i, (position, kind) in enumerate(trajectories):
                assert np.array_equal(reader[i].position, position)
                assert np.array_equal(reader[i].particle_type, kind)


def test_damaged_tfrecords_fail_with_the_file_named_and_nothing_written(tmp_path):
    particle_folder(tmp_path / "src")
    path = tmp_path / "src" / "valid.tfrecord"
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="valid.tfrecord.*checksum"):
        import_learning_to_simulate(str(tmp_path / "src"), str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out" / "valid.h5").exists() and not list((tmp_path / "out").glob("*.tmp"))
    path.write_bytes(bytes(data[:-7]))
    with pytest.raises(ValueError, match="truncated|checksum"):
        list(records(path))
    (tmp_path / "src" / "metadata.json").write_text("{}")
    with pytest.raises(ValueError, match="metadata lacks"):
        import_learning_to_simulate(str(tmp_path / "src"), str(tmp_path / "out2"), progress=False)


def test_meshgraphnets_imports_value_for_value(tmp_path):
    written, (mesh_pos, cells, node_type) = mesh_folder(tmp_path / "cylinder_flow")
    import_meshgraphnets(str(tmp_path / "cylinder_flow"), str(tmp_path / "out"), limit=1, progress=False)
    for split in SPLITS:
        with MeshTrajectoryReader(tmp_path / "out" / f"{split}.h5") as reader:
            assert len(reader) == 1 and reader.metadata["dt"] == 0.01
            assert reader.metadata["fields"] == {"velocity": "m/s", "pressure": "m^2/s^2"}
            traj = reader[0]
            assert np.array_equal(traj.mesh_pos, mesh_pos) and np.array_equal(traj.cells, cells)
            assert np.array_equal(traj.node_type, node_type)
            assert np.array_equal(traj.fields["velocity"], written[split][0][0])
            assert np.array_equal(traj.fields["pressure"], written[split][0][1])


@pytest.mark.slow
def test_sims_trainers_train_on_imported_deepmind_data(tmp_path):
    particle_folder(tmp_path / "WaterDrop", frames=16)
    assert main(["data", "import", "learning-to-simulate", str(tmp_path / "WaterDrop"), "--out",
                 str(tmp_path / "particles"), "--no-progress"]) == 0
    assert main(["sims", "train-gns", "--data", str(tmp_path / "particles"), "--run-dir", str(tmp_path / "gns"),
                 "--latent", "16", "--message-passing-steps", "2", "--steps", "4", "--no-progress"]) == 0
    mesh_folder(tmp_path / "cylinder_flow", frames=12)
    assert main(["data", "import", "meshgraphnets", str(tmp_path / "cylinder_flow"), "--out",
                 str(tmp_path / "mesh"), "--no-progress"]) == 0
    assert main(["sims", "train-mgn", "--data", str(tmp_path / "mesh"), "--run-dir", str(tmp_path / "mgn"),
                 "--steps", "4", "--latent", "8", "--message-passing-steps", "1", "--normaliser-warmup", "4",
                 "--validation-rollout", "3", "--no-progress"]) == 0
    assert (tmp_path / "gns" / "config.json").is_file() and (tmp_path / "mgn" / "config.json").is_file()
