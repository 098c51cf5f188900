"""Reports: one table, one metrics.json shape, read back by one function."""
import json
import math

import pytest

from training.report import Column, Report, mean_and_spread, read_report


def report() -> Report:
    r = Report("toy", [Column("rmse", "RMSE", "m/s", ".3g"), Column("auc", "AUC")], info={"events": 3})
    r.add("model", "learned (model)", {"rmse": 0.0123456, "auc": 0.91, "hidden": 2.0})
    r.add("frozen", "frozen field", {"rmse": math.nan})
    r.extra["curve"] = [1.0, 2.0]
    r.extra["per_lead"] = {"csi": [0.5, math.nan]}
    return r


def test_write_and_read_back_the_same_report(tmp_path):
    original = report()
    original.write(tmp_path)
    again = read_report(tmp_path)
    assert again.title == original.title and again.columns == original.columns and again.info == original.info
    assert again["model"].values == original["model"].values and again.extra["curve"] == [1.0, 2.0]
    assert again.extra["per_lead"] == {"csi": [0.5, None]}
    assert math.isnan(again["frozen"]["rmse"])
    assert json.loads((tmp_path / "metrics.json").read_text())["rows"][1]["values"]["rmse"] is None  # valid JSON


def test_markdown_has_units_labels_and_formats(tmp_path):
    table = report().to_markdown().splitlines()
    assert table[0] == "| method | RMSE [m/s] | AUC |"
    assert table[2] == "| learned (model) | 0.0123 | 0.91 |" and table[3] == "| frozen field | n/a | n/a |"
    report().write(tmp_path)
    assert (tmp_path / "table.md").read_text().endswith("\n".join(table) + "\n")


def test_rows_are_found_by_key_and_keys_are_unique():
    r = report()
    assert r["model"]["auc"] == 0.91 and "frozen" in r and "absent" not in r
    with pytest.raises(KeyError, match="no row 'absent'"):
        r["absent"]
    with pytest.raises(ValueError, match="already has a row"):
        r.add("model", "again", {})


def test_a_folder_without_a_report_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        read_report(tmp_path)
    (tmp_path / "metrics.json").write_text('{"rows": []}')
    with pytest.raises(ValueError, match="not a physml report"):
        read_report(tmp_path)


def test_spread_over_trajectories_is_the_sample_std_shown_beside_the_mean(tmp_path):
    samples = [{"rmse": 1.0, "rmse_100": math.nan}, {"rmse": 2.0, "rmse_100": 4.0}, {"rmse": 4.5, "rmse_100": 6.0}]
    values = mean_and_spread(samples)
    assert values["rmse"] == pytest.approx(2.5) and values["rmse_std"] == pytest.approx(math.sqrt(3.25))
    assert values["rmse_100"] == 5.0 and values["rmse_100_std"] == pytest.approx(math.sqrt(2))  # NaN skipped
    assert mean_and_spread(samples[:1])["rmse_std"] == 0.0
    r = Report("spread", [Column("rmse", "RMSE", "m", ".2f", spread="rmse_std")])
    r.add("model", "model", values)
    r.add("plain", "no spread", {"rmse": 1.0})
    assert r.to_markdown().splitlines()[2:] == ["| model | 2.50 ± 1.80 |", "| no spread | 1.00 |"]
    r.write(tmp_path)
    assert read_report(tmp_path).columns == r.columns
