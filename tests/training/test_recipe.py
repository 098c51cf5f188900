"""The run protocol: train a recipe, load it back from its folder alone, refuse folders of other models."""
import json
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from training.recipe import Built, Recipe, load, read_run, train
from training.trainer import TrainerConfig


@dataclass
class LineRun:
    """Fit y = 3x - 1 with a linear layer whose width the data decides."""

    points: int = 64              # samples in the training set
    width: int | None = None      # filled by build (from the data)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(steps=60, batch_size=8, lr=0.05,
                                                                         progress=False, device="cpu"))


def model(run: LineRun) -> nn.Module:
    return nn.Linear(run.width, 1)


def build(run: LineRun) -> Built:
    x = torch.linspace(-1, 1, run.points)[:, None]
    data = torch.utils.data.TensorDataset(x, 3 * x - 1)
    run.width = x.shape[1]
    return Built(model(run), data, data, None, lambda m, b: (nn.functional.mse_loss(m(b[0]), b[1]), {}))


LINE = Recipe("line", "a straight line", LineRun, build, model)
OTHER = Recipe("other", "another model", LineRun, build, model)


def test_train_then_load_gives_the_trained_network_and_its_run(tmp_path):
    run = LineRun()
    run.trainer.run_dir = str(tmp_path)
    metrics = train(LINE, run)
    assert metrics["loss"] < 0.05
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["recipe"] == "line" and config["run"]["width"] == 1 and config["world_size"] == 1
    assert config["run"]["trainer"]["checkpoint_every"] == 6 and config["run"]["trainer"]["eval_every"] == 12
    net, again = load(tmp_path, [OTHER, LINE])
    assert again == run and not net.training
    x = torch.tensor([[0.5]])
    assert float(net(x).detach()) == pytest.approx(0.5, abs=0.2)


def test_load_refuses_other_models_and_old_folders(tmp_path):
    run = LineRun()
    run.trainer.run_dir, run.trainer.steps = str(tmp_path / "run"), 2
    train(LINE, run)
    with pytest.raises(ValueError, match="a 'line' run; expected a run of other"):
        read_run(tmp_path / "run", [OTHER])
    with pytest.raises(FileNotFoundError, match="config.json: no such file"):
        load(tmp_path, [LINE])
    (tmp_path / "config.json").write_text(json.dumps({"trainer": {}}))
    with pytest.raises(ValueError, match="older physml"):
        read_run(tmp_path, [LINE])
    (tmp_path / "config.json").write_text(json.dumps({"recipe": "line", "run": {"points": "many"}}))
    with pytest.raises(ValueError, match="points: expected int"):
        read_run(tmp_path, [LINE])


@dataclass
class MLPRun(LineRun):
    hidden: int = 3               # hidden units


def mlp(run: MLPRun) -> nn.Module:
    return nn.Sequential(nn.Linear(run.width, run.hidden), nn.Tanh(), nn.Linear(run.hidden, 1))


def build_mlp(run: MLPRun) -> Built:
    built = build(run)
    built.model = mlp(run)
    return built


def test_resume_with_another_network_names_what_changed(tmp_path):
    recipe = Recipe("mlp", "a small MLP", MLPRun, build_mlp, mlp)
    run = MLPRun()
    run.trainer.run_dir, run.trainer.steps = str(tmp_path), 4
    train(recipe, run)
    before = (tmp_path / "config.json").read_text()
    wider = MLPRun(hidden=5)
    wider.trainer.run_dir, wider.trainer.steps, wider.trainer.resume = str(tmp_path), 8, True
    with pytest.raises(ValueError, match=r"step_00000004.pt: does not fit the network of this run \(changed since: "
                                         r"hidden: 3 -> 5\); resume with the settings in"):
        train(recipe, wider)
    assert (tmp_path / "config.json").read_text() == before
