"""The shipped simulators: weights-only checkpoints, each card's check reproduced from the shipped weights on
fresh scenes (seeds the models never saw), against the baseline the card names, and `sims rollout
--pretrained` exporting rollouts."""
import pytest
import torch

from datasets.rollouts import read_mesh_rollout
from physml.cli import main
from sims.evaluate import SHIPPED, check_scenes
from training.checkpoint import best_path
from training.report import read_report


@pytest.mark.parametrize("name", ["gns-waterdrop", "gns-waterdrop-50ms", "mgn-flag", "mgn-cylinder"])
def test_shipped_simulator_loads_weights_only(name):
    assert set(torch.load(best_path(SHIPPED[name].folder), weights_only=True)) == {"model"}


def _reproduce(name: str, data_file, out) -> None:
    check = SHIPPED[name].check
    assert main(["sims", "evaluate", "--pretrained", name, "--data", str(data_file), "--out", str(out),
                 "--trajectories", str(check["trajectories"]), "--precision", "fp32"]) == 0
    report = read_report(out)
    measured = report[check["row"]][check["metric"]]
    assert abs(measured / check["value"] - 1) <= check["tolerance"], (measured, check)
    assert measured < report[check["baseline"]][check["metric"]]  # and it beats the baseline the card names


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gns-waterdrop", "gns-waterdrop-50ms"])
def test_shipped_gns_reproduces_its_card(tmp_path, name):
    _reproduce(name, check_scenes(name, tmp_path / "water"), tmp_path / "eval")


@pytest.mark.slow
def test_shipped_flag_model_reproduces_its_card_and_rolls_out(tmp_path):
    test = check_scenes("mgn-flag", tmp_path / "flag")
    _reproduce("mgn-flag", test, tmp_path / "eval")
    out = tmp_path / "rollouts"
    assert main(["sims", "rollout", "--pretrained", "mgn-flag", "--data", str(test), "--out", str(out),
                 "--max-steps", "5"]) == 0
    rollout = read_mesh_rollout(out / "rollout_000.h5")
    assert rollout.predicted.shape[0] == 5 and rollout.field == "world_pos"
    assert main(["sims", "rollout", "--pretrained", "no-such-model", "--data", str(test), "--out",
                 str(tmp_path / "never")]) == 2
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_shipped_cylinder_model_reproduces_its_card(tmp_path):
    _reproduce("mgn-cylinder", check_scenes("mgn-cylinder", tmp_path / "flow"), tmp_path / "eval")


def test_check_scenes_refuse_an_unknown_model(tmp_path):
    with pytest.raises(ValueError, match="no check scenes for 'no-such-model'"):
        check_scenes("no-such-model", tmp_path / "never")
    assert not (tmp_path / "never").exists()
