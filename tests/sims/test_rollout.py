from dataclasses import replace

import h5py
import numpy as np
import pytest
import torch

import physml
from datasets.rollouts import read_particle_rollout
from physml.cli import main
from sims.evaluate import evaluate_gns
from sims.gns import GNS, GNSConfig
from sims.rollout import ballistic, constant_velocity, export_rollout, learned_rollout, summary
from sims.train_gns import GNSRun
from training.report import read_report


def test_constant_velocity_is_exact_for_uniform_motion():
    t = np.arange(20, dtype=np.float64)[:, None, None]
    positions = 0.3 + 0.01 * t * np.array([1.0, -0.5])[None, None, :] + np.zeros((20, 4, 2))
    rollout = constant_velocity(positions, np.full(4, 5), history=6)
    assert rollout.predicted.shape == (14, 4, 2)
    assert np.allclose(rollout.errors["position_mse"], 0.0)


def test_ballistic_is_exact_in_free_fall_and_stops_at_the_floor():
    """Parabolas x(t) = x0 + v0 t - g t^2 / 2 sampled every dt: exact until a drop reaches the floor (y = 0.1),
    where it stays, inside the tank, with no vertical motion."""
    g, dt, t = 9.81, 0.0025, np.arange(60, dtype=np.float64)[:, None] * 0.0025
    start = np.array([[0.3, 0.8], [0.5, 0.6], [0.7, 0.15]])
    velocity = np.array([[0.2, 0.0], [-0.1, 0.3], [0.0, -0.5]])
    positions = start[None] + velocity[None] * t[..., None] - 0.5 * g * np.array([0.0, 1.0]) * t[..., None] ** 2
    bounds = np.array([[0.1, 0.9], [0.1, 0.9]])
    rollout = ballistic(positions, np.full(3, 5), bounds, g, dt, history=6)
    landed = positions[6:, :, 1] < 0.1
    free = ~landed.any(0)  # the first two drops never land
    assert np.abs(rollout.predicted[:, free] - positions[6:, free]).max() < 1e-12
    assert landed[:, 2].any() and np.all(rollout.predicted[:, 2, 1] >= 0.1)
    assert np.allclose(rollout.predicted[landed[:, 2], 2, 1], 0.1)
    assert np.ptp(rollout.predicted[-5:, 2, 1]) == 0.0


def test_the_20_step_column_stays_empty_for_shorter_rollouts():
    positions = np.random.default_rng(2).random((16, 3, 2))
    short = summary([constant_velocity(positions, np.full(3, 5))])
    assert np.isnan(short["mse_at_20"]) and np.isfinite(short["rollout_mse"])


class Exploding(torch.nn.Module):
    """A 'model' whose prediction becomes infinite at its fourth call."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, window, types, batch):
        self.calls += 1
        return torch.full_like(window[:, -1], float("inf") if self.calls >= 4 else 0.0)

    def next_position(self, window, acc):
        return window[:, -1] + (window[:, -1] - window[:, -2]) + acc


def test_divergence_is_caught_flagged_and_exported(tmp_path):
    positions = np.random.default_rng(0).random((15, 5, 2))
    rollout = learned_rollout(Exploding(), positions, np.full(5, 5), history=6)
    assert rollout.diverged_at == 3
    assert np.isfinite(rollout.predicted[:3]).all() and np.isnan(rollout.predicted[3:]).all()
    path = export_rollout(tmp_path / "r.h5", rollout, {"dim": 2}, {"latent": 1})
    with h5py.File(path) as f:
        assert f.attrs["diverged_at"] == 3 and f.attrs["schema"] == "particle-rollout"
        assert np.array_equal(f["ground_truth_rollout"][()], positions[6:].astype(np.float32))
        assert {"position_mse", "kinetic_energy_error"} <= set(f["errors"])


def test_interrupted_export_leaves_no_file(tmp_path, monkeypatch):
    rollout = constant_velocity(np.random.default_rng(1).random((10, 3, 2)), np.full(3, 5))
    monkeypatch.setattr("sims.rollout.code_version", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        export_rollout(tmp_path / "r.h5", rollout, {}, {})
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_train_then_evaluate_end_to_end(tiny_waterdrop, tmp_path):
    run = tmp_path / "run"
    assert main(["sims", "train-gns", "--data", str(tiny_waterdrop), "--run-dir", str(run), "--latent", "16",
                 "--message-passing-steps", "2", "--steps", "20", "--no-progress"]) == 0
    model, saved = physml.load(run)
    assert isinstance(model, GNS) and saved == GNSRun(
        data_dir=str(tiny_waterdrop), gns=GNSConfig(latent=16, n_steps=2), metadata=saved.metadata,
        trainer=replace(GNSRun().trainer, run_dir=str(run), steps=20, progress=False).resolved())
    assert main(["sims", "rollout", "--run-dir", str(run), "--max-steps", "5"]) == 0
    exported = read_particle_rollout(run / "rollouts" / "rollout_000.h5")
    assert exported.predicted.shape[0] == 5 and exported.model_config["gns"]["latent"] == 16
    report = evaluate_gns(run, tiny_waterdrop / "test.h5", tmp_path / "eval", max_trajectories=1)
    assert {"gns", "constant_velocity", "ballistic", "solver_equal_cost"} <= {r.key for r in report.rows}
    assert "steps per frame" in report["solver_equal_cost"].label
    assert read_report(tmp_path / "eval").to_json() == report.to_json()  # NaN cells (20-step column) read as null
    for name in ("rollout_000.h5", "rollout_000.png", "rollout_000.gif", "error_vs_step.png", "table.md"):
        assert (tmp_path / "eval" / name).stat().st_size > 0


def test_summary_gives_the_spread_over_trajectories():
    rng = np.random.default_rng(3)
    rollouts = [constant_velocity(rng.random((30, 4, 2)), np.full(4, 5)) for _ in range(3)]
    values = summary(rollouts)
    per = [np.mean(r.errors["position_mse"]) for r in rollouts]
    assert values["rollout_mse"] == pytest.approx(np.mean(per))
    assert values["rollout_mse_std"] == pytest.approx(np.std(per, ddof=1)) and values["diverged"] == 0


def test_the_solver_at_the_models_cost_takes_more_steps_for_a_slower_model(tiny_waterdrop):
    from datasets.trajectories import TrajectoryReader
    from sims.evaluate import equal_cost_substeps

    with TrajectoryReader(tiny_waterdrop / "test.h5") as reader:
        metadata, positions = reader.metadata, reader[0].position.astype(np.float64)
    assert equal_cost_substeps(metadata, positions, 6, 1e-9) == 1  # a model faster than one solver step
    assert 1 < equal_cost_substeps(metadata, positions, 6, 0.01) < equal_cost_substeps(metadata, positions, 6, 1.0)
