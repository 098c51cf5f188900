import json
import subprocess
import sys

import pytest

from datasets import registry
from physml import domains
from physml.cli import main
from training.figures import pyplot


def every_command() -> list[list[str]]:
    """Every command line the front door offers, down to each model, task and alias."""
    domains.register_datasets()
    commands = [[], ["demo"], ["data"], ["data", "list"], ["data", "generate"], ["data", "import"], ["models"],
                ["models", "list"]]
    commands += [["data", "generate", spec.name] for spec in registry.all_datasets()]
    commands += [["data", "import", spec.name] for spec in registry.all_imports()]
    for name, app in domains.apps().items():
        commands.append([name])
        if getattr(app, "RECIPES", None):
            commands.append([name, "train"])
        for recipe in getattr(app, "RECIPES", []):
            commands += [[name, "train", recipe.name], [name, f"train-{recipe.name}"]]
        for command in getattr(app, "COMMANDS", []):
            commands.append([name, command.verb])
            for task in command.tasks:
                commands += [[name, command.verb, task], [name, f"{command.verb}-{task}"]]
    return commands


def test_help_at_every_level(capsys):
    commands = every_command()
    assert ["hep", "evaluate-calo"] in commands and ["weather", "train-dgmr"] in commands and len(commands) > 40
    for argv in commands:
        with pytest.raises(SystemExit) as done:
            main(argv + ["--help"])
        assert done.value.code == 0, argv
        assert "usage: physml" in capsys.readouterr().out


def test_the_commands_of_the_first_round_keep_their_names(capsys):
    for argv in (["sims", "train-forces"], ["sims", "train-gns"], ["sims", "train-mgn"], ["sims", "rollout"],
                 ["sims", "evaluate"], ["hep", "train-calo"], ["hep", "evaluate-calo"], ["hep", "train-tracking"],
                 ["hep", "evaluate-tracking"], ["hep", "train-jets"], ["hep", "evaluate-jets"], ["weather", "train"],
                 ["weather", "train", "--model", "unet"], ["weather", "nowcast"], ["weather", "evaluate"]):
        with pytest.raises(SystemExit) as done:
            main(argv + ["--help"])
        assert done.value.code == 0, argv
    assert "physml weather train unet" in capsys.readouterr().out  # --model NAME selects the model


def test_data_list_names_the_datasets(capsys):
    assert main(["data", "list"]) == 0
    assert "soft_disks" in capsys.readouterr().out


def test_generate_then_train_forces(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["data", "generate", "soft_disks", "--out", str(data), "--trajectories", "2", "--frames", "8",
                 "--particles", "10", "--no-progress"]) == 0
    assert sorted(p.name for p in data.iterdir()) == ["generate.json", "test.h5", "train.h5", "valid.h5"]
    assert json.loads((data / "generate.json").read_text())["trajectories"] == 2
    before = (data / "train.h5").read_bytes()
    assert main(["data", "generate", "soft_disks", "--out", str(data), "--seed", "1", "--no-progress"]) == 2
    assert "not an empty folder" in capsys.readouterr().err and (data / "train.h5").read_bytes() == before
    assert main(["data", "generate", "soft_disks", "--out", str(data), "--seed", "1", "--resume"]) == 2
    assert "same dataset and options" in capsys.readouterr().err and (data / "train.h5").read_bytes() == before
    (data / "generate.json").unlink()
    assert main(["data", "generate", "soft_disks", "--out", str(data), "--resume"]) == 2
    assert "this folder has none" in capsys.readouterr().err and (data / "train.h5").read_bytes() == before
    assert main(["data", "generate", "soft_disks", "--out", str(tmp_path / "bad"), "--frames", "0"]) == 2
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())  # no trace of a failed run
    assert main(["sims", "train-forces", "--data", str(data), "--run-dir", str(tmp_path / "run"), "--steps", "4",
                 "--batch-size", "2", "--latent", "8", "--no-progress"]) == 0
    assert "explained_variance" in capsys.readouterr().out and (tmp_path / "run" / "parity.png").exists()


def test_bad_input_gives_a_clear_error(tmp_path, capsys):
    assert main(["sims", "train-forces", "--data", str(tmp_path / "nowhere"), "--steps", "1"]) == 2
    assert "nowhere/train.h5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "generate", "no_such_dataset"])


def test_one_error_path(tmp_path, capsys, monkeypatch):
    """User errors: one line, exit 2; Ctrl-C: one line, exit 130; a bug: traceback and a report request, exit 1."""
    import sims.evaluate

    for error, code, text in ((ValueError("x.h5: field 'position': expected float32"), 2, "physml: error: x.h5"),
                              (KeyboardInterrupt(), 130, "physml: interrupted"),
                              (KeyError("rng"), 1, "this is a bug in physml")):
        def fail(*args, error=error, **kwargs):
            raise error
        monkeypatch.setattr(sims.evaluate, "read_run", fail)
        assert main(["sims", "evaluate", "--run-dir", str(tmp_path)]) == code
        err = capsys.readouterr().err
        assert text in err and (("Traceback" in err) == (code == 1))


def test_console_script_is_installed():
    done = subprocess.run([sys.executable, "-m", "physml.cli", "data", "list"], capture_output=True, text=True)
    assert done.returncode == 0 and "soft_disks" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)  # every domain's demo step: a few minutes on 2 idle cores
def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("| gnn |") == 2 and summary.count("| sims |") == 6 and summary.count("| hep |") == 8
    assert summary.count("| weather |") == 4
    assert "EDGES DIFFER" not in summary
    assert (tmp_path / "learned_forces" / "loss.png").exists()
    assert (tmp_path / "gns" / "eval" / "rollout_000.h5").exists()
    assert (tmp_path / "mgn_flag" / "eval" / "rollout_000.gif").exists()
    assert (tmp_path / "mgn_cylinder" / "eval" / "rollout_000.h5").exists()
    assert (tmp_path / "jets" / "eval" / "roc.png").exists()
    assert (tmp_path / "weather" / "eval" / "frames.png").exists()
    # the summary page: every row's figure in the PNG grid and the HTML, none missing
    page = (tmp_path / "summary.html").read_text()
    assert "missing figure" not in page and page.count("<img") == 7 and "| hep |" not in page
    image = pyplot().imread(tmp_path / "summary.png")
    assert image.shape[0] > 1000 and image.shape[1] > 1000 and image[..., :3].std() > 0.05
