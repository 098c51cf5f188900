"""The shipped simulators: weights-only checkpoints, each card's check reproduced from the shipped weights on
fresh scenes (seeds the models never saw), against the baseline the card names, and `sims rollout
--pretrained` exporting rollouts."""
import pytest
import torch

from datasets.rollouts import read_mesh_rollout
from physml.cli import main
from sims import data, mesh_data
from sims.evaluate import SHIPPED
from training.checkpoint import best_path
from training.report import read_report


@pytest.mark.parametrize("name", ["gns-waterdrop", "gns-waterdrop-50ms", "mgn-flag", "mgn-cylinder"])
def test_shipped_simulator_loads_weights_only(name):
    assert set(torch.load(best_path(SHIPPED[name].folder), weights_only=True)) == {"model"}


def _reproduce(name: str, data_file, out) -> dict:
    card = SHIPPED[name]
    check = card.check
    assert main(["sims", "evaluate", "--pretrained", name, "--data", str(data_file), "--out", str(out),
                 "--trajectories", str(check["trajectories"]), "--precision", "fp32"]) == 0
    report = read_report(out)
    measured = report[check["row"]][check["metric"]]
    assert abs(measured / check["value"] - 1) <= check["tolerance"], (measured, check)
    assert measured < report[check["baseline"]][check["metric"]]  # and it beats the baseline the card names
    return check


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gns-waterdrop", "gns-waterdrop-50ms"])
def test_shipped_gns_reproduces_its_card(tmp_path, name):
    check = SHIPPED[name].check
    data.generate_waterdrop(tmp_path / "water", seed=check["seed"], trajectories=1, held_out=check["trajectories"],
                            frames=check["frames"], frame_dt=check["frame_dt"], progress=False)
    _reproduce(name, tmp_path / "water" / "test.h5", tmp_path / "eval")


@pytest.mark.slow
def test_shipped_flag_model_reproduces_its_card_and_rolls_out(tmp_path):
    check = SHIPPED["mgn-flag"].check
    mesh_data.generate_flag(tmp_path / "flag", seed=check["seed"], trajectories=4 * check["trajectories"],
                            frames=check["frames"], progress=False)
    test = tmp_path / "flag" / "test.h5"
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
    check = SHIPPED["mgn-cylinder"].check
    mesh_data.generate_cylinder_flow(tmp_path / "flow", seed=check["seed"], trajectories=1,
                                     held_out=check["trajectories"], frames=2, test_frames=check["frames"],
                                     workers=2, progress=False)
    _reproduce("mgn-cylinder", tmp_path / "flow" / "test.h5", tmp_path / "eval")
