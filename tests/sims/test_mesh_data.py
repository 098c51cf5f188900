"""`physml data generate cylinder_flow|flag` write valid mesh trajectories with their own meshes."""
import numpy as np
import pytest

from datasets.meshes import OBSTACLE, MeshTrajectoryReader
from physml.cli import main
from training.report import read_report


def test_generate_cylinder_flow_and_flag(tmp_path):
    args = ["data", "generate", "cylinder_flow", "--trajectories", "2", "--frames", "5", "--held-out", "1",
            "--test-frames", "7", "--warmup", "0.05", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    assert not (tmp_path / "c" / "parts").exists()
    with MeshTrajectoryReader(tmp_path / "c" / "test.h5") as reader:
        assert reader[0].fields["velocity"].shape[0] == 7 and len(reader) == 1
        assert 150 <= reader.metadata["reynolds"][0] <= 220
    with MeshTrajectoryReader(tmp_path / "c" / "train.h5") as reader:
        a, b = reader[0], reader[1]
        assert a.fields["velocity"].shape == (5, len(a.mesh_pos), 2) and a.fields["pressure"].shape[-1] == 1
        assert len(a.mesh_pos) != len(b.mesh_pos)  # each trajectory has its own cylinder and mesh
        assert np.abs(a.fields["velocity"][:, a.node_type == OBSTACLE]).max() == 0  # no slip
        assert reader.metadata["fields"] == {"velocity": "m/s", "pressure": "m^2/s^2"}
    assert main(["data", "generate", "flag", "--out", str(tmp_path / "f"), "--trajectories", "1", "--frames", "5",
                 "--nx", "6", "--ny", "4", "--no-progress"]) == 0
    with MeshTrajectoryReader(tmp_path / "f" / "test.h5") as reader:
        assert reader[0].fields["world_pos"].shape == (5, 24, 3)


def test_train_mgn_rollout_and_evaluate_commands(tmp_path):
    import h5py

    data, run = tmp_path / "flag", tmp_path / "run"
    assert main(["data", "generate", "flag", "--out", str(data), "--trajectories", "2", "--frames", "12", "--nx", "6",
                 "--ny", "4", "--no-progress"]) == 0
    assert main(["sims", "train-mgn", "--data", str(data), "--run-dir", str(run), "--steps", "4", "--latent", "8",
                 "--message-passing-steps", "1", "--no-progress"]) == 0
    assert main(["sims", "evaluate", "--run-dir", str(run), "--trajectories", "1"]) == 0
    report = read_report(run / "eval")
    assert {"rmse_1", "rmse_10", "rmse_all", "seconds_per_frame"} <= set(report["mgn"].values)
    assert report["solver"]["seconds_per_frame"] > 0
    assert 0 < report["solver"]["mean_strain"] < 0.1 and 0 <= report["mgn"]["mean_strain_within_5pct"] <= 1
    with h5py.File(run / "eval" / "rollout_000.h5") as f:
        assert f.attrs["schema"] == "mesh-rollout" and f.attrs["field"] == "world_pos"
        predicted, truth = f["predicted_rollout"][()], f["ground_truth_rollout"][()]
        assert predicted.shape == truth.shape == (10, 24, 3)
        pole = f["node_type"][()] == 3
        assert np.array_equal(predicted[:, pole], truth[:, pole])  # the pole follows the ground truth
    for picture in ("rollout_000.png", "rollout_000.gif", "error_vs_step.png"):
        assert (run / "eval" / picture).stat().st_size > 0
    assert main(["sims", "evaluate", "--run-dir", str(run), "--ensemble", "2", "--out", str(tmp_path / "e")]) == 2

    refiner = tmp_path / "refiner"  # the same with a PDE-Refiner, scored with an ensemble of 3
    assert main(["sims", "train-mgn", "--data", str(data), "--run-dir", str(refiner), "--steps", "4", "--latent", "8",
                 "--message-passing-steps", "1", "--refinement-steps", "2", "--no-progress"]) == 0
    assert main(["sims", "evaluate", "--run-dir", str(refiner), "--trajectories", "1", "--ensemble", "3"]) == 0
    report = read_report(refiner / "eval")
    assert "PDE-Refiner (K=2)" in report["mgn"].label and report["ensemble"]["spread_all"] > 0
    assert (refiner / "eval" / "spread_vs_error.png").stat().st_size > 0


def test_cylinder_flow_generation_is_the_same_in_parallel_and_resumed(tmp_path):
    """Every trajectory is drawn from the seed up front: two workers write the same files as one process, and
    a run that finds a trajectory already simulated (an interrupted run) keeps it and simulates the rest."""
    from datasets.meshes import write_mesh_trajectories
    from sims.mesh_data import generate_cylinder_flow

    kwargs = dict(trajectories=2, frames=3, held_out=1, test_frames=3, warmup=0.02, progress=False)
    generate_cylinder_flow(tmp_path / "one", **kwargs)
    generate_cylinder_flow(tmp_path / "two", workers=2, **kwargs)
    with MeshTrajectoryReader(tmp_path / "one" / "train.h5") as reader:
        done = reader[1]
        done.fields["velocity"] += 1.0  # marks the trajectory the interrupted run had finished
        write_mesh_trajectories(tmp_path / "resumed" / "parts" / "train_00001.h5", [done],
                                {"fields": reader.metadata["fields"], "dt": reader.metadata["dt"], "split": "train"})
    generate_cylinder_flow(tmp_path / "resumed", **kwargs)
    for split in ("train", "valid", "test"):
        with MeshTrajectoryReader(tmp_path / "one" / f"{split}.h5") as a, \
                MeshTrajectoryReader(tmp_path / "two" / f"{split}.h5") as b, \
                MeshTrajectoryReader(tmp_path / "resumed" / f"{split}.h5") as c:
            assert len(a) == len(b) == len(c)
            for i in range(len(a)):
                velocity = a[i].fields["velocity"]
                assert np.array_equal(velocity, b[i].fields["velocity"])
                kept = split == "train" and i == 1
                assert np.array_equal(velocity + kept, c[i].fields["velocity"])


def test_a_cylinder_trajectory_whose_solve_diverges_is_meshed_again(tmp_path, monkeypatch):
    """Channel 285 of seed 0 (the 286th trajectory, mesh seed 286) diverges 0.5 s into its spin-up on its
    first mesh; the part written for it comes from another mesh of the same channel and is finite. A channel
    that diverges on every mesh is an error, and no file is written."""
    from sims import mesh_data
    from sims.solvers.cylinder_flow import Channel, simulate_cylinder_flow

    channel = Channel(length=1.6, center=(0.1766522700737816, 0.2608874771865075), radius=0.04102460732607049,
                      mean_inflow=2.4141858118821675, viscosity=0.001, h_cylinder=0.015, h_far=0.05, ramp=0.5)
    first = simulate_cylinder_flow(channel, frames=2, frame_dt=0.01, warmup=0.5, seed=286)
    assert not np.isfinite(first.fields["velocity"]).all()
    path = tmp_path / "train_00285.h5"
    mesh_data._simulate_part(path, channel, frames=2, frame_dt=0.01, warmup=0.5, seed=286)
    with MeshTrajectoryReader(path) as reader:
        traj = reader[0]
    assert np.isfinite(traj.fields["velocity"]).all() and len(traj.mesh_pos) != len(first.mesh_pos)

    def diverging(*args, **kwargs):
        traj = simulate_cylinder_flow(*args, **kwargs)
        traj.fields["velocity"][-1, 0] = np.nan
        return traj

    monkeypatch.setattr(mesh_data, "simulate_cylinder_flow", diverging)
    with pytest.raises(RuntimeError, match="diverged on 4 meshes"):
        mesh_data._simulate_part(tmp_path / "never.h5", channel, frames=2, frame_dt=0.01, warmup=0.02, seed=1)
    assert not (tmp_path / "never.h5").exists()
