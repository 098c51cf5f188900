"""The MeshGraphNet size sweep (``physml scaling sweep mgn``) on a tiny flag dataset."""
import csv
import math

import pytest

from physml.cli import main


@pytest.mark.slow
def test_mgn_sweep_records_parameters_flops_and_rollout_error(tmp_path, capsys):
    data, out = tmp_path / "flag", tmp_path / "sweep"
    assert main(["data", "generate", "flag", "--out", str(data), "--trajectories", "2", "--frames", "12", "--nx", "6",
                 "--ny", "4", "--no-progress"]) == 0
    args = ["scaling", "sweep", "mgn", "--data", str(data), "--out", str(out), "--sizes", "8", "16",
            "--samples", "8", "16"]
    assert main(args) == 0
    rows = {r["run"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert sorted(rows) == ["w16_d16_e1", "w16_d8_e1", "w8_d16_e1", "w8_d8_e1"]
    small, wide = rows["w8_d8_e1"], rows["w16_d8_e1"]
    assert int(small["steps"]) == 4 and int(rows["w8_d16_e1"]["steps"]) == 8  # batch 2
    assert int(wide["params"]) > int(small["params"]) == int(small["total_params"])
    assert int(rows["w8_d16_e1"]["flops"]) == 2 * int(small["flops"]) > 0
    assert all(math.isfinite(float(r["loss"])) and float(r["rollout_rmse"]) > 0 for r in rows.values())
    assert main(["scaling", "sweep", "mgn", "--data", str(data), "--out", str(out), "--sizes", "8", "--samples", "8",
                 "--experts", "4"]) != 0
    assert "no routed layers" in capsys.readouterr().err
