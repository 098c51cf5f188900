"""The conditional shower diffusion model: its voxel transform, its azimuthal symmetry, and the commands."""

import numpy as np
import pytest
import torch

from datasets.showers import read_showers
from hep.calo.model import CaloDiffusion, CaloDiffusionConfig, ShowerSet, training_loss
from physml.cli import main
from training.report import read_report


def tiny_model(prediction="epsilon"):
    torch.manual_seed(0)
    return CaloDiffusion(CaloDiffusionConfig(channels=(8, 16), prediction=prediction))


def test_encode_decode_round_trip_per_voxel_standardisation_clip_and_threshold():
    model = tiny_model()
    rng = np.random.default_rng(0)
    energy = torch.from_numpy(rng.uniform(2e3, 5e5, (64, 1)).astype(np.float32))
    showers = torch.from_numpy((rng.exponential(5.0, (64, 6480)) * (rng.random((64, 6480)) > 0.3)).astype(np.float32))
    showers[:, 0] = 0.0                     # a voxel the data never fills
    model.fit_transform(showers, energy)
    u = model.encode(showers, energy).reshape(64, -1)
    assert u[:, 1:].mean(0).abs().max() < 1e-4 and (u[:, 1:].std(0) - 1).abs().max() < 1e-4  # every voxel
    assert u[:, 0].abs().max() < 1e-5 and model.scale[0] == 1
    layer0 = showers[:, :144]
    assert model.threshold[0] == 0.5 * layer0[layer0 > 0].min()
    back = model.decode(u, energy)
    assert torch.allclose(back, showers, rtol=1e-3, atol=1e-3)
    beyond = model.decode(u + 50 * torch.sign(u - 0.01), energy)  # far outside the data: clipped per voxel
    most = (showers / energy).amax(0)       # the largest fraction of E_inc each voxel ever held
    assert ((beyond / energy).amax(0) <= most * 1.001 + 1e-8).all() and (beyond[:, 0] == 0).all()
    small = showers.clone()
    small[0, 1] = 0.5 * model.threshold[0]  # below its layer's smallest training deposit: read out as zero
    assert model.decode(model.encode(small, energy), energy)[0, 1] == 0


def test_rotating_the_calorimeter_by_a_quarter_turn_rotates_the_prediction():
    """Circular padding in alpha: a shift by 4 bins (the U-Net's downsampling factor) commutes with the network."""
    model = tiny_model().eval()
    x = torch.randn(2, 1, 45, 16, 9, generator=torch.Generator().manual_seed(1))
    t, energy = torch.tensor([10, 300]), torch.tensor([[3e3], [4e5]])
    with torch.no_grad():
        out = model(x, t, energy)
        rotated = model(torch.roll(x, 4, dims=3), t, energy)
    assert torch.allclose(rotated, torch.roll(out, 4, dims=3), atol=1e-5)


@pytest.mark.parametrize("prediction, factor", [("epsilon", 0.5), ("v_prediction", 0.85)])
def test_training_reduces_the_denoising_loss(tmp_path, prediction, factor):
    from hep.calo.data import generate_calo

    generate_calo(tmp_path, seed=0, train=64, test=8, progress=False)
    energy, showers = (torch.from_numpy(a) for a in read_showers(tmp_path / "train.h5"))
    model = tiny_model(prediction)
    model.fit_transform(showers, energy)
    data = ShowerSet(model, energy[:16], showers[:16])  # 16 showers: the loss falls as with all 64, 6x cheaper
    batch = (data.u, data.energy)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(60):
        loss, _ = training_loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-10:]) < factor * np.mean(losses[:5])


@pytest.mark.slow
def test_generate_train_and_evaluate_commands(tmp_path, capsys):
    data, run, out = tmp_path / "calo", tmp_path / "run", tmp_path / "eval"
    assert main(["data", "generate", "calo", "--out", str(data), "--train", "96", "--test", "16",
                 "--no-progress"]) == 0
    assert main(["hep", "train-calo", "--data", str(data), "--run-dir", str(run), "--steps", "6",
                 "--batch-size", "16", "--channels", "8", "16", "--no-progress"]) == 0
    assert main(["hep", "evaluate-calo", "--run-dir", str(run), "--out", str(out), "--showers", "16",
                 "--samplers", "ddim:2", "edm:2", "--classifier-hidden", "16"]) == 0
    report = read_report(out)
    assert [r.key for r in report.rows] == ["gflash", "ddim_2", "ddim_2_energy_model", "edm_2", "edm_2_energy_model"]
    assert report["ddim_2_energy_model"].label == "ddim 2 steps + energy model"
    assert all(0 <= r["auc_low"] <= 1 for r in report.rows)
    energy, generated = read_showers(out / "ddim_2.h5")
    _, renormalised = read_showers(out / "ddim_2_energy_model.h5")
    ratio = renormalised.sum(1) / energy[:, 0]
    assert abs(ratio.mean() - 0.99) < 0.03 and (np.abs(ratio - 0.99) < 0.25).all()  # GFlash: ~99% in the voxels
    assert generated.shape == (16, 6480) and (generated >= 0).all()
    assert np.array_equal(energy, read_showers(data / "test.h5")[0])
    for picture in ("average_images.png", "profiles.png", "features.png"):
        assert (out / picture).stat().st_size > 0
    assert "AUC low-level" in capsys.readouterr().out
    assert main(["hep", "evaluate-calo", "--run-dir", str(run), "--data", str(tmp_path / "absent.h5")]) == 2
    assert main(["hep", "evaluate-calo", "--run-dir", str(run), "--samplers", "ddim"]) == 2


def test_energy_model_reproduces_the_deposited_energy_distribution():
    model = tiny_model()
    rng = np.random.default_rng(3)
    energy = torch.from_numpy(np.exp(rng.uniform(np.log(1e3), np.log(1e6), 4000)).astype(np.float32))[:, None]
    ratio = torch.from_numpy(rng.normal(0.95, 0.02, 4000).astype(np.float32))
    showers = torch.zeros(4000, 6480)
    showers[:, 0] = ratio * energy[:, 0]
    model.fit_transform(showers, energy)
    drawn = model.total.sample(energy, torch.Generator().manual_seed(0)) / energy[:, 0]
    assert float(drawn.mean()) == pytest.approx(0.95, abs=0.002) and float(drawn.std()) == pytest.approx(0.02, rel=0.1)
    shaped = torch.rand(5, 6480)
    out = model.renormalise(shaped, energy[:5])
    assert torch.allclose(out / out.sum(1, keepdim=True), shaped / shaped.sum(1, keepdim=True), atol=1e-6)
