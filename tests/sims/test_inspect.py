import json

import pytest

from physml.cli import main


def test_inspect_mgn_skips_each_step_and_relates_messages_to_strain(tmp_path):
    data, run, out = tmp_path / "flag", tmp_path / "run", tmp_path / "inspect"
    assert main(["data", "generate", "flag", "--out", str(data), "--trajectories", "2", "--frames", "12", "--nx", "6",
                 "--ny", "4", "--no-progress"]) == 0
    assert main(["sims", "train-mgn", "--data", str(data), "--run-dir", str(run), "--steps", "4", "--latent", "8",
                 "--message-passing-steps", "2", "--no-progress"]) == 0
    assert main(["sims", "inspect-mgn", str(run), "--horizon", "5", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    rows = {r["key"]: r["values"] for r in report["rows"]}
    assert list(rows) == ["intact", "step_0", "step_1"]
    assert all(v["ratio"] == pytest.approx(v["rmse"] / rows["intact"]["rmse"]) for v in rows.values())
    assert rows["step_0"]["rmse"] != rows["intact"]["rmse"]  # skipping a step changes the rollout
    assert report["info"]["edge_quantity"] == "|strain|"
    assert all(-1 <= r <= 1 for r in report["info"]["spearman_message_norm_vs_edge_quantity"])
    assert (out / "messages.png").stat().st_size > 0
