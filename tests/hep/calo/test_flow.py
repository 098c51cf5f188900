"""The two-stage flow-matching shower generator: exact decoding of its features, spot-quantised output, and
the commands."""
import json

import numpy as np
import pytest
import torch

from datasets.showers import CaloGeometry, read_showers
from hep.calo.data import generate_calo
from hep.calo.flow import CaloFlow, CaloFlowConfig, SpotFeatures, SpotShowerSet, training_loss
from hep.calo.spots import spot_counts
from physml.cli import main
from training.report import read_report

GEOMETRY = CaloGeometry()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("calo")
    generate_calo(path, seed=0, train=96, test=8, progress=False)
    energy, showers = read_showers(path / "train.h5")
    torch.manual_seed(0)
    model = CaloFlow(CaloFlowConfig(dim=32, depth=1, heads=2, mlp_dim=32))
    features = SpotFeatures.of(showers, GEOMETRY)
    model.fit_transform(features, torch.rand(features.n.shape), torch.from_numpy(showers.sum(1)),
                        torch.from_numpy(energy))
    return model, energy, showers, features


def test_decoding_the_standardised_features_of_showers_gives_back_their_ring_energies(data):
    model, energy, showers, features = data
    batch = SpotShowerSet(model, torch.from_numpy(energy), features)
    first, second, mask, _ = (torch.stack(x) for x in zip(*[batch[i] for i in range(len(batch))]))
    assert abs(float(first.mean())) < 0.05 and abs(float(first.std()) - 1) < 0.05
    decoded = model.decode(first, second, np.random.default_rng(0)).numpy()
    rings = lambda s: s.reshape(len(s), *GEOMETRY.shape).sum(axis=2)  # noqa: E731
    assert np.allclose(rings(decoded), rings(showers), rtol=1e-5, atol=1e-4)
    assert not np.array_equal(decoded, showers)                     # the azimuthal split is drawn anew


def test_generated_showers_are_spot_quantised_and_seeded(data):
    model, energy, *_ = data
    sampler = model.sampler("heun", 2)
    a = model.generate(torch.from_numpy(energy[:6]), sampler, torch.Generator().manual_seed(1))
    b = model.generate(torch.from_numpy(energy[:6]), sampler, torch.Generator().manual_seed(1))
    assert a.shape == (6, GEOMETRY.n_voxels) and torch.equal(a, b) and (a >= 0).all()
    spot_counts(a.numpy(), GEOMETRY)                                # raises unless every layer is quantised
    with pytest.raises(ValueError, match="euler or heun"):
        model.sampler("ddim", 4)


def test_training_reduces_both_stages_losses(data):
    model, energy, _, features = data
    batch = [torch.stack(x) for x in zip(*[SpotShowerSet(model, torch.from_numpy(energy), features)[i]
                                           for i in range(len(energy))])]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    first = [training_loss(model, batch)[1] for _ in range(5)]
    for _ in range(80):
        loss, _ = training_loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    last = [training_loss(model, batch)[1] for _ in range(5)]
    for key in ("loss_energies", "loss_shapes"):
        assert np.mean([m[key] for m in last]) < 0.85 * np.mean([m[key] for m in first]), key  # floor: ~1 per dim


def test_the_patch_must_divide_the_layers():
    with pytest.raises(ValueError, match="patch 4 does not divide the 45 layers"):
        CaloFlow(CaloFlowConfig(patch=4))


@pytest.mark.slow
def test_train_and_evaluate_commands(tmp_path):
    data, run, out = tmp_path / "calo", tmp_path / "run", tmp_path / "eval"
    generate_calo(data, seed=1, train=96, test=16, progress=False)
    assert main(["hep", "train-calo-flow", "--data", str(data), "--run-dir", str(run), "--steps", "4",
                 "--batch-size", "16", "--dim", "16", "--depth", "1", "--heads", "2", "--no-progress",
                 "--validation-showers", "32", "--eval-every", "2", "--select-by", "hl_auc"]) == 0
    scored = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [m for m in scored if m.get("split") == "eval"]  # held-out loss and classifier AUC, steps 2 and 4
    assert [m["step"] for m in scored] == [2, 4] and all(0 <= m["hl_auc"] <= 1 and m["loss"] > 0 for m in scored)
    assert (run / "checkpoints" / "best.pt").exists()
    assert main(["hep", "train-calo-flow", "--data", str(data), "--run-dir", str(tmp_path / "bad"),
                 "--validation-showers", "60", "--no-progress"]) == 2  # more than half of the 96 showers
    assert main(["hep", "evaluate-calo", "--run-dir", str(run), "--out", str(out), "--showers", "16",
                 "--samplers", "euler:2", "--classifier-hidden", "16"]) == 0
    assert [r.key for r in read_report(out).rows] == ["gflash", "euler_2", "euler_2_energy_model"]
    energy, generated = read_showers(out / "euler_2.h5")
    assert generated.shape == (16, GEOMETRY.n_voxels) and np.array_equal(energy, read_showers(data / "test.h5")[0])
