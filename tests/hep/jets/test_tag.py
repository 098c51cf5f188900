"""``physml hep tag`` and the shipped tagger: the pretrained ParticleNet-Lite reproduces its model card on the
committed sample; scores are entry-aligned with the input, read the user's branch names, and bad input gives a
clear error and no scores file."""
import json

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

from datasets.root import DataConfig, RootWriter
from hep.classification import roc_auc
from hep.jets import SAMPLE_DIR
from hep.jets.inputs import DEFAULT_CONFIG
from hep.jets.tag import SHIPPED, tag
from physml.cli import main
from tests.hep.jets.test_models import write_jets
from training.checkpoint import best_path

SAMPLE = sorted(SAMPLE_DIR.glob("jets_*.root"))


def read_scores(path):
    return uproot.open(path)["scores"].arrays(library="np")


def test_shipped_checkpoints_are_weights_only():
    assert SHIPPED, "no shipped tagger found (package data missing?)"
    for card in SHIPPED.values():
        state = torch.load(best_path(card.folder), weights_only=True)
        assert set(state) == {"model"}
        assert json.loads((card.folder / "config.json").read_text())["recipe"] == "jets"


@pytest.mark.slow
def test_pretrained_tagger_reproduces_its_card_on_the_sample(tmp_path):
    card = SHIPPED["particlenet-lite"]
    out = tag([str(p) for p in SAMPLE], out=str(tmp_path / "scores.root"), pretrained="particlenet-lite",
              device="cpu")
    scores = read_scores(out)
    truth = [uproot.open(p)["jets"]["label"].array(library="np") for p in SAMPLE]
    assert np.array_equal(scores["label"], np.concatenate(truth))  # one entry per input jet, in order
    assert np.array_equal(scores["file_index"], np.repeat(np.arange(len(SAMPLE)), [len(t) for t in truth]))
    assert np.array_equal(scores["entry"], np.concatenate([np.arange(len(t)) for t in truth]))
    assert np.allclose(scores["score_qcd"] + scores["score_top"], 1, atol=1e-6)
    auc = roc_auc(scores["label"], scores["score_top"])
    assert abs(auc - card.metrics["auc"]) <= card.check["tolerance"], (auc, card.metrics)


def test_tag_reads_the_users_branch_names_and_needs_no_label(tmp_path, monkeypatch):
    path = write_jets(tmp_path / "jets.root", n=40)
    model = _tiny_run(tmp_path / "run")
    reference = read_scores(tag([str(path)], out=str(tmp_path / "a.root"), model=str(model), device="cpu"))
    # the same jets under other names, without labels, in another tree
    arrays = uproot.open(path)["jets"].arrays()
    renamed = {"pfcand": ak.zip({"px": arrays.part_px, "py": arrays.part_py, "pz": arrays.part_pz,
                                 "e": arrays.part_energy}),
               **{f"fj_{k}": arrays[f"jet_{k}"] for k in ("pt", "eta", "phi", "energy")}}
    with RootWriter(tmp_path / "user.root") as out:
        out.extend("Events", renamed)
    raw = DataConfig.from_yaml(DEFAULT_CONFIG)
    mapping = {"part_px": "pfcand_px", "part_py": "pfcand_py", "part_pz": "pfcand_pz", "part_energy": "pfcand_e",
               **{f"jet_{k}": f"fj_{k}" for k in ("pt", "eta", "phi", "energy")}}
    config = {"treename": "Events", "branches": mapping, "new_variables": raw.new_variables,
              "inputs": {name: {"vars": list(spec.vars), "length": spec.length} for name, spec in raw.inputs.items()}}
    (tmp_path / "user.yaml").write_text(json.dumps(config))  # JSON is YAML
    user = read_scores(tag([str(tmp_path / "user.root")], out=str(tmp_path / "b.root"), model=str(model),
                           data_config=str(tmp_path / "user.yaml"), device="cpu"))
    assert "label" not in user
    assert np.allclose(user["score_top"], reference["score_top"], atol=1e-6)


def test_bad_input_gives_a_clear_error_and_no_scores_file(tmp_path):
    model = _tiny_run(tmp_path / "run")
    good = write_jets(tmp_path / "jets.root", n=20)
    broken = tmp_path / "broken.root"
    broken.write_bytes(good.read_bytes()[:5000])
    out = tmp_path / "scores.root"
    with pytest.raises(ValueError, match="broken.root"):
        tag([str(good), str(broken)], out=str(out), model=str(model), device="cpu")
    assert not out.exists() and not list(tmp_path.glob("scores.root*"))
    selecting = tmp_path / "select.yaml"
    selecting.write_text(DEFAULT_CONFIG.read_text() + "selection: jet_pt > 500\n")
    with pytest.raises(ValueError, match="selection"):
        tag([str(good)], out=str(out), model=str(model), data_config=str(selecting), device="cpu")
    with pytest.raises(ValueError, match="either"):
        tag([str(good)], out=str(out), model=str(model), pretrained="particlenet-lite")
    with pytest.raises(ValueError, match="no such shipped model"):
        tag([str(good)], out=str(out), pretrained="nonesuch")
    assert not out.exists()


def test_cli_tags_and_lists_the_shipped_models(tmp_path, capsys):
    assert main(["models", "list"]) == 0
    assert "particlenet-lite" in capsys.readouterr().out
    out = tmp_path / "s.root"
    assert main(["hep", "tag", str(SAMPLE[0]), "--pretrained", "particlenet-lite", "--out", str(out),
                 "--device", "cpu"]) == 0
    assert len(read_scores(out)["score_top"]) == 2000
    assert main(["hep", "tag", str(tmp_path / "missing.root"), "--pretrained", "particlenet-lite",
                 "--out", str(tmp_path / "t.root")]) == 2
    assert "missing.root" in capsys.readouterr().err
    assert main(["hep", "evaluate-jets", "--pretrained", "particlenet-lite", "--data", str(SAMPLE_DIR), "--out",
                 str(tmp_path / "eval")]) == 0
    assert main(["hep", "evaluate-jets", "--pretrained", "particlenet-lite", "--out", str(tmp_path / "e2")]) == 2


def _tiny_run(run_dir):
    """A run folder of an untrained ParticleNet-Lite (its weights as a checkpoint): enough for tagging tests."""
    from hep.jets.train import JetRun, build_model
    from training.checkpoint import save_best
    from training.config import to_dict

    torch.manual_seed(0)
    run = JetRun(model="particlenet-lite")
    save_best(run_dir, {"model": build_model(run).state_dict()})
    (run_dir / "config.json").write_text(json.dumps({"recipe": "jets", "run": to_dict(run)}))
    return run_dir
