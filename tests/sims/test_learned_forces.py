import numpy as np
import pytest
import torch

from datasets.trajectories import TrajectoryReader
from sims.data import generate_soft_disks
from sims.learned_forces import RECIPE, FrameGraphs, LearnedForcesRun
from training.recipe import load, train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("soft_disks")
    generate_soft_disks(out, seed=3, trajectories=4, frames=20, particles=60, progress=False)
    return out


def test_generated_files_follow_the_schema_and_are_seeded(data_dir, tmp_path):
    with TrajectoryReader(data_dir / "train.h5") as reader:
        meta = reader.metadata
        assert len(reader) == 4 and reader[0].position.shape == (20, 60, 2)
        assert {"bounds", "sequence_length", "default_connectivity_radius", "dim", "dt", "vel_mean", "vel_std",
                "acc_mean", "acc_std"} <= set(meta)
        first = reader[0].position
    generate_soft_disks(tmp_path, seed=3, trajectories=4, frames=20, particles=60, progress=False)
    with TrajectoryReader(tmp_path / "train.h5") as again:
        assert np.array_equal(again[0].position, first)


def test_graph_features_are_translation_invariant(data_dir):
    frames = FrameGraphs(data_dir / "train.h5")
    x = frames.positions[0][5]
    g1 = frames.graph(x)
    g2 = frames.graph(x + torch.tensor([1e-3, -2e-3]))
    assert torch.equal(g1.senders, g2.senders)
    assert torch.allclose(g1.edges, g2.edges, atol=1e-5)


@pytest.mark.slow
def test_learned_forces_beat_the_mean_baseline(data_dir, tmp_path):
    run = LearnedForcesRun(data_dir=str(data_dir), latent=32, n_steps=3)
    run.trainer.run_dir, run.trainer.steps, run.trainer.progress = str(tmp_path / "run"), 600, False
    metrics = train(RECIPE, run)
    assert metrics["explained_variance"] > 0.5
    assert (tmp_path / "run" / "parity.png").exists()
    model, again = load(tmp_path / "run", [RECIPE])
    assert again == run and again.dim == 2
