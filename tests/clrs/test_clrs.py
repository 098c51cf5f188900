"""The learned executor: padding in nodes and in time changes no execution's predictions, the benchmark's
scores, and ``physml clrs train|evaluate`` end to end (single-task, multi-task, exact resume)."""
import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from clrs.evaluate import _f1, scores
from clrs.model import ClrsNet
from clrs.train import ClrsRun, algorithms, batch_loss
from datasets.clrs import SPECS, ClrsData, Location, Type, collate, sample
from physml.cli import main
from training.checkpoint import list_checkpoints


def real(feature, x, n):
    """The entries of the first ``n`` nodes of a prediction (batch and time axes leading)."""
    if feature.type is Type.POINTER:
        return x[..., :n, :n]
    if feature.type is Type.CATEGORICAL:
        return x[..., :n, :]
    return x if feature.location is Location.GRAPH else x[..., :n]


@pytest.mark.parametrize("algorithm", ["bellman_ford", "insertion_sort", "binary_search", "topological_sort"])
def test_a_batch_predicts_what_each_execution_predicts_alone(algorithm):
    torch.manual_seed(0)
    model = ClrsNet((algorithm,), dim=16).eval()
    spec = SPECS[algorithm]
    rng = np.random.default_rng(0)
    items = [(algorithm, sample(algorithm, n, rng)) for n in (3, 7, 5)]
    with torch.no_grad():
        outputs, hints = model(collate(items))
        bare, no_hints = model(collate(items), keep_hints=False)   # how scoring runs
        assert not no_hints and all(torch.equal(bare[k], v) for k, v in outputs.items())
        for b, item in enumerate(items):
            alone, alone_hints = model(collate([item]))
            n = len(item[1]["pos"])
            for name, value in alone.items():
                torch.testing.assert_close(real(spec[name], outputs[name][b], n), value[0], atol=1e-5, rtol=1e-5)
            for name, value in alone_hints.items():  # the batch runs longer; this execution's steps agree
                steps = value.shape[1]
                torch.testing.assert_close(real(spec[name], hints[name][b, :steps], n), value[0], atol=1e-5,
                                           rtol=1e-5)


def test_f1_is_sklearns():
    rng = np.random.default_rng(1)
    pred, true = rng.random(200) < 0.3, rng.random(200) < 0.4
    assert _f1(pred, true) == pytest.approx(f1_score(true, pred))


def test_loss_falls_and_scores_rise_on_bfs():
    torch.manual_seed(0)
    data = ClrsData("bfs", (5,), 32, seed=0, p=(0.5,), random_pos=True)
    model = ClrsNet(("bfs",), dim=32)
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    batch = collate([data[i] for i in range(32)])
    first = float(batch_loss(model, batch)[0])
    for _ in range(60):
        optimiser.zero_grad()
        loss, _ = batch_loss(model, batch)
        loss.backward()
        optimiser.step()
    assert float(loss) < 0.3 * first
    assert scores(model, data)["score"] > 0.9


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="--algorithm takes distinct names"):
        algorithms(ClrsRun(algorithm=("bogosort",)))
    assert algorithms(ClrsRun(algorithm=("all",))) == tuple(SPECS)


def losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r.get("split") == "train"}


@pytest.mark.slow
def test_cli_trains_resumes_exactly_and_evaluates(tmp_path):
    tiny = ["--examples", "24", "--dim", "16", "--sizes", "4", "6", "--batch-size", "4", "--no-progress",
            "--log-every", "1"]
    args = ["clrs", "train", "--algorithm", "bfs", "--steps", "4", "--checkpoint-every", "2", *tiny]
    assert main([*args, "--run-dir", str(tmp_path / "full")]) == 0
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")
    list_checkpoints(tmp_path / "resumed")[-1].unlink()  # interrupted after step 2
    assert main([*args, "--run-dir", str(tmp_path / "resumed"), "--resume"]) == 0
    assert losses(tmp_path / "resumed") == losses(tmp_path / "full")
    assert main(["clrs", "train", "--algorithm", "all", "--steps", "3", "--run-dir", str(tmp_path / "all"),
                 *tiny]) == 0
    assert main(["clrs", "evaluate", str(tmp_path / "full"), str(tmp_path / "all"), "--out", str(tmp_path / "eval"),
                 "--sizes", "5", "9", "--examples", "4"]) == 0
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    keys = {row["key"] for row in report["rows"]}
    assert "bfs/single" in keys and {f"{a}/multi" for a in SPECS} <= keys
    assert main(["clrs", "train", "--algorithm", "bfs", "bfs", "--run-dir", str(tmp_path / "bad"), *tiny]) == 2
