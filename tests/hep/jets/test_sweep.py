"""The scaling sweep on the shipped jet sample: runs, active parameters, counted FLOPs, resumption, the fit."""
import csv

import pytest

from hep.jets import SAMPLE_DIR


@pytest.mark.slow
def test_jet_sweep_collects_runs_for_the_fit_and_continues(tmp_path, capsys):
    from physml.cli import main

    args = ["scaling", "sweep", "jets", "--data", str(SAMPLE_DIR), "--out", str(tmp_path / "sweep"),
            "--sizes", "16", "32", "--samples", "256", "512", "--experts", "1", "4"]
    assert main(args) == 0
    results = tmp_path / "sweep" / "results.csv"
    rows = {r["run"]: r for r in csv.DictReader(results.open())}
    assert len(rows) == 8
    dense, routed = rows["w16_d256_e1"], rows["w16_d256_e4"]
    assert dense["params"] == dense["total_params"]
    # top-1: a routed tagger's particle uses the dense tagger's parameters plus two 16 x 4 routers
    assert int(routed["params"]) == int(dense["params"]) + 2 * 16 * 4
    assert int(routed["total_params"]) > int(routed["params"])
    assert int(rows["w32_d256_e1"]["flops"]) > int(dense["flops"]) > 0
    assert int(rows["w16_d512_e1"]["flops"]) == 2 * int(dense["flops"])  # twice the steps
    assert all(0 < float(r["loss"]) < 2 for r in rows.values())
    stamp = results.stat().st_mtime_ns
    assert main(args) == 0 and results.stat().st_mtime_ns == stamp  # nothing left to train
    assert main(["scaling", "fit", str(results), "--bootstrap", "0"]) == 0
    assert "routed (Clark et al.)" in capsys.readouterr().out
