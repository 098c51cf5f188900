import json

import numpy as np
import pytest

import physml
from datasets.trajectories import TrajectoryReader
from physml.cli import main
from sims.inspect import _gns_probe


def _check_ablation_report(out, steps: int, edge_quantity: str) -> None:
    report = json.loads((out / "metrics.json").read_text())
    rows = {r["key"]: r["values"] for r in report["rows"]}
    assert list(rows) == ["intact"] + [f"step_{s}" for s in range(steps)]
    assert all(v["ratio"] == pytest.approx(v["error"] / rows["intact"]["error"]) for v in rows.values())
    assert rows["step_0"]["error"] != rows["intact"]["error"]  # skipping a step changes the rollout
    assert report["info"]["edge_quantity"] == edge_quantity
    assert len(report["info"]["spearman_message_norm_vs_edge_quantity"]) == steps
    assert all(-1 <= r <= 1 for r in report["info"]["spearman_message_norm_vs_edge_quantity"])
    assert (out / "messages.png").stat().st_size > 0


def test_inspect_mgn_skips_each_step_and_relates_messages_to_strain(tmp_path):
    data, run, out = tmp_path / "flag", tmp_path / "run", tmp_path / "inspect"
    assert main(["data", "generate", "flag", "--out", str(data), "--trajectories", "2", "--frames", "12", "--nx", "6",
                 "--ny", "4", "--no-progress"]) == 0
    assert main(["sims", "train-mgn", "--data", str(data), "--run-dir", str(run), "--steps", "4", "--latent", "8",
                 "--message-passing-steps", "2", "--no-progress"]) == 0
    assert main(["sims", "inspect", str(run), "--horizon", "5", "--out", str(out)]) == 0
    _check_ablation_report(out, 2, "|strain|")


def test_inspect_gns_skips_each_step_and_relates_messages_to_distance(tiny_waterdrop, tmp_path):
    run, out = tmp_path / "run", tmp_path / "inspect"
    assert main(["sims", "train-gns", "--data", str(tiny_waterdrop), "--run-dir", str(run), "--latent", "8",
                 "--message-passing-steps", "3", "--steps", "4", "--no-progress"]) == 0
    assert main(["sims", "inspect", str(run), "--horizon", "5", "--trajectories", "2", "--out", str(out)]) == 0
    _check_ablation_report(out, 3, "|x_s - x_r| [m]")

    # the messages are paired with the right edges: every pair of distinct particles of a trajectory closer
    # than the connectivity radius at the window's last frame (T/2 - 1), once in each direction (brute force)
    model, _ = physml.load(run)
    distances, _ = _gns_probe(model, str(tiny_waterdrop / "test.h5"), 2, 5).edge_quantity()
    expected = []
    with TrajectoryReader(tiny_waterdrop / "test.h5") as reader:
        for k in range(min(2, len(reader))):
            position = reader[k].position
            x = position[len(position) // 2 - 1].astype(np.float32)
            d = np.linalg.norm(x[:, None] - x[None], axis=-1)
            expected.append(d[(d < model.radius) & ~np.eye(len(x), dtype=bool)])
    np.testing.assert_allclose(np.sort(distances), np.sort(np.concatenate(expected)), rtol=1e-5, atol=1e-7)
