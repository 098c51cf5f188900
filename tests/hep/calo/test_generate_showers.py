"""``physml hep generate-showers``: CaloChallenge files for the energies asked, from the shipped flow; the
shipped generator stays at GFlash's noise floor on fresh showers (its card's check)."""
import numpy as np
import pytest
import torch

from datasets.showers import CaloGeometry, read_showers
from hep.calo.data import generate_calo
from hep.calo.evaluate import evaluate
from hep.calo.generate_showers import SHIPPED, incident_energies
from hep.calo.spots import spot_counts
from physml.cli import main
from training.checkpoint import best_path


def test_incident_energies_as_asked():
    assert incident_energies((1000.0, 2000.0), None, 3, 0).ravel().tolist() == [1000.0] * 3 + [2000.0] * 3
    e = incident_energies((), (1e3, 1e6), 500, 0)
    assert e.shape == (500, 1) and 1e3 <= e.min() and e.max() <= 1e6
    assert 0.4 < np.mean(np.log10(e) < 4.5) < 0.6  # log-uniform: half below the geometric middle
    for bad in (((), None, 3), ((1000.0,), (1e3, 1e6), 3), ((-5.0,), None, 3), ((1000.0,), None, 0)):
        with pytest.raises(ValueError):
            incident_energies(*bad, 0)


def test_shipped_generator_loads_weights_only():
    card = SHIPPED["calo-flow"]
    assert set(torch.load(best_path(card.folder), weights_only=True)) == {"model"}


@pytest.mark.slow
def test_cli_writes_calochallenge_showers_of_the_energies_asked(tmp_path):
    out = tmp_path / "showers.h5"
    assert main(["hep", "generate-showers", "--energies", "5000", "200000", "--n", "6", "--pretrained",
                 "calo-flow", "--out", str(out), "--device", "cpu", "--sampler", "euler:8"]) == 0
    energy, showers = read_showers(out)
    assert energy.ravel().tolist() == [5000.0] * 6 + [200000.0] * 6 and showers.shape == (12, 6480)
    assert (showers >= 0).all()
    fraction = showers.sum(1) / energy.ravel()
    assert (0.5 < fraction).all() and (fraction < 1.05).all()
    spot_counts(showers[:6], CaloGeometry())  # spot-quantised like the GFlash showers it learned (raises otherwise)


@pytest.mark.slow
def test_shipped_generator_stays_near_the_noise_floor(tmp_path):
    card = SHIPPED["calo-flow"]
    check = card.check
    generate_calo(tmp_path / "data", seed=check["seed"], train=1, test=check["showers"], progress=False)
    report = evaluate(str(card.folder), data=str(tmp_path / "data" / "test.h5"), out=str(tmp_path / "eval"),
                      showers=check["showers"], samplers=("euler:16",), seed=check["seed"],
                      classifier_hidden=check["classifier_hidden"], gflash_batches=(1,))
    measured = report["euler_16_energy_model"]["auc_high"]
    assert abs(measured - check["value"]) <= check["tolerance"], (measured, check)
