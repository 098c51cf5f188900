import json

import torch

from backbones.induction import AttentionOnly, periodic_sequences


def test_training_sequences_repeat_a_segment_of_distinct_tokens_with_a_random_period():
    tokens = periodic_sequences(50, 40, 32, (4, 12), torch.Generator().manual_seed(0))
    periods = []
    for row in tokens.tolist():
        period = next(p for p in range(1, 41) if all(row[i] == row[i % p] for i in range(40)))
        assert len(set(row[:period])) == period  # distinct tokens: each has one earlier copy per cycle
        periods.append(period)
    assert min(periods) >= 4 and max(periods) <= 12 and len(set(periods)) > 4


def test_the_attention_only_model_is_causal():
    torch.manual_seed(0)
    model = AttentionOnly(vocab=16, length=12, layers=2).eval()
    tokens = torch.randint(0, 16, (2, 12))
    changed = tokens.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 16
    with torch.no_grad():
        assert torch.allclose(model(tokens)[:, :7], model(changed)[:, :7], atol=1e-6)
        assert not torch.allclose(model(tokens)[:, 7:], model(changed)[:, 7:], atol=1e-3)


def test_the_induction_heads_command_writes_its_curves_and_refuses_bad_periods(tmp_path):
    from physml.cli import main

    out = tmp_path / "induction"
    assert main(["inspect", "induction-heads", "--out", str(out), "--steps", "20", "--log-every", "10",
                 "--vocab", "16", "--length", "16", "--periods", "2", "6"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"chance_loss", "2_layer", "1_layer"}
    assert summary["2_layer"]["best_prefix_head"].startswith("L")
    assert (out / "induction_heads.png").stat().st_size > 0
    lines = (out / "metrics.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 3 and "prefix_L1H3" in lines[0]
    assert main(["inspect", "induction-heads", "--out", str(tmp_path / "bad"), "--periods", "8", "40"]) == 2
    assert not (tmp_path / "bad").exists()
