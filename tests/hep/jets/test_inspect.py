import json

import pytest


@pytest.mark.slow
def test_inspect_tagger_ablates_every_head_and_draws_the_attention(tmp_path):
    from hep.jets import SAMPLE_DIR
    from physml.cli import main

    common = ["--data", str(SAMPLE_DIR), "--max-jets", "600", "--steps", "2", "--batch-size", "16", "--no-progress"]
    assert main(["hep", "train-jets", "--model", "part", "--run-dir", str(tmp_path / "part"), *common]) == 0
    out = tmp_path / "inspect"
    assert main(["hep", "inspect-tagger", str(tmp_path / "part"), "--jets", "60", "--out", str(out)]) == 0
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    assert len(rows) == 1 + 4 * 4 + 1 * 4  # intact, 4 heads of 4 particle blocks and of 1 class block
    intact = rows[0]["values"]["auc"]
    assert all(r["values"]["delta_auc"] == pytest.approx(r["values"]["auc"] - intact) for r in rows)
    assert (out / "class_attention.png").stat().st_size > 0 and (out / "pair_mass.png").stat().st_size > 0
    assert main(["hep", "train-jets", "--model", "pfn", "--run-dir", str(tmp_path / "pfn"), *common]) == 0
    assert main(["hep", "inspect-tagger", str(tmp_path / "pfn"), "--out", str(tmp_path / "no")]) == 2
    assert not (tmp_path / "no").exists()
