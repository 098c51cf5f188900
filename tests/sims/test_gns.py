import numpy as np
import pytest
import torch

from datasets.trajectories import KINEMATIC
from sims.gns import GNS, GNSConfig, random_walk_noise, training_loss
from sims.train_gns import RECIPE, GNSRun
from sims.windows import PositionWindows, collate
from tests.conftest import requires_cuda
from training.recipe import train


def small_model(metadata):
    torch.manual_seed(0)
    return GNS(GNSConfig(latent=16, n_steps=2), metadata)


def test_random_walk_noise_has_the_published_statistics():
    torch.manual_seed(0)
    noise = random_walk_noise(torch.zeros(20000, 6, 2), noise_std=1e-3)
    assert torch.all(noise[:, 0] == 0)
    last_velocity_noise = noise[:, -1] - noise[:, -2]
    assert last_velocity_noise.std().item() == pytest.approx(1e-3, rel=0.03)


def test_target_and_integrator_are_inverse(tiny_waterdrop):
    windows = PositionWindows(tiny_waterdrop / "train.h5")
    model = small_model(windows.metadata)
    w = windows[3]["positions"]
    target = model.target(w[:, :-1], w[:, -1])
    assert torch.allclose(model.next_position(w[:, :-1], target), w[:, -1], atol=1e-6)


def test_gns_is_permutation_equivariant(tiny_waterdrop):
    windows = PositionWindows(tiny_waterdrop / "train.h5")
    model = small_model(windows.metadata).eval()
    batch = collate([windows[0], windows[40]])
    perm = torch.randperm(len(batch["batch"]), generator=torch.Generator().manual_seed(0))
    inputs = batch["positions"][:, :-1]
    out = model(inputs, batch["particle_type"], batch["batch"])
    out_p = model(inputs[perm], batch["particle_type"][perm], batch["batch"][perm])
    assert torch.allclose(out_p, out[perm], atol=1e-5)


def test_noise_is_off_in_evaluation(tiny_waterdrop):
    """In eval mode the loss is the clean one-step loss, computed here by hand: the MSE between the predicted
    and the true normalised acceleration, over the particles that move; in train mode it is not."""
    windows = PositionWindows(tiny_waterdrop / "train.h5")
    model = small_model(windows.metadata).eval()
    batch = collate([windows[5], windows[30]])
    window, types = batch["positions"], batch["particle_type"]
    with torch.no_grad():
        predicted = model(window[:, :-1], types, batch["batch"])
        acc = window[:, -1] - 2 * window[:, -2] + window[:, -3]
        target = (acc - model.acc_mean) / model.acc_std
        moving = types != KINEMATIC
        by_hand = ((predicted - target) ** 2)[moving].mean().item()
        assert training_loss(model, batch)[0].item() == pytest.approx(by_hand, rel=1e-5)
        torch.manual_seed(0)
        assert training_loss(model.train(), batch)[0].item() != pytest.approx(by_hand, rel=1e-3)


@pytest.mark.slow
def test_training_reduces_the_validation_loss(tiny_waterdrop, tmp_path):
    run = GNSRun(data_dir=str(tiny_waterdrop))
    run.gns.latent, run.gns.n_steps = 32, 3
    t = run.trainer
    t.run_dir, t.steps, t.eval_every, t.checkpoint_every, t.progress, t.decay_steps = (
        str(tmp_path / "run"), 200, 100, 100, False, 200)
    train(RECIPE, run)
    rows = [r for r in map(__import__("json").loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
            if r["split"] == "eval"]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert np.isfinite(rows[-1]["loss"])


@requires_cuda
def test_gns_on_cuda_matches_cpu(tiny_waterdrop):
    windows = PositionWindows(tiny_waterdrop / "train.h5")
    model = small_model(windows.metadata).eval()
    batch = collate([windows[0], windows[40]])
    inputs = batch["positions"][:, :-1]
    cpu = model(inputs, batch["particle_type"], batch["batch"])
    gpu = model.cuda()(inputs.cuda(), batch["particle_type"].cuda(), batch["batch"].cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)
    loss, _ = training_loss(model.train(), {k: v.cuda() for k, v in batch.items()})
    loss.backward()
