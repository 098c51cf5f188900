import pytest
import torch

from backbones.interpret import attention_probe, detection_pattern, head_scores
from backbones.transformer import SetTransformer, TransformerConfig


def model_and_set(seed: int = 0):
    torch.manual_seed(seed)
    model = SetTransformer(TransformerConfig(dim=16, heads=4, mlp_dim=32, depth=2, class_depth=1, dropout=0.0))
    x = torch.randn(3, 7, 16)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    return model.eval(), x, mask


def test_the_probe_records_what_the_fused_kernel_computes_and_leaves_nothing_behind():
    model, x, mask = model_and_set()
    with torch.no_grad():
        fused = model(x, mask)
        with attention_probe(model) as maps:
            probed = model(x, mask)
        after = model(x, mask)
    assert torch.allclose(probed, fused, atol=1e-6) and torch.equal(after, fused)
    assert set(maps) == {"blocks.0.attn", "blocks.1.attn", "class_blocks.0.attn"}
    assert maps["blocks.0.attn"].shape == (3, 4, 7, 7) and maps["class_blocks.0.attn"].shape == (3, 4, 1, 8)
    assert torch.allclose(maps["blocks.1.attn"].sum(-1), torch.ones(3, 4, 7))
    assert (maps["blocks.1.attn"][1, :, :, 5:] == 0).all()  # padded particles get no attention
    assert all(m.probe is None for m in model.modules() if hasattr(m, "probe"))


def test_zero_ablating_a_head_equals_removing_its_columns_of_the_output_projection():
    model, x, mask = model_and_set()
    with torch.no_grad(), attention_probe(model, ablate={"blocks.1.attn": [2]}):
        ablated = model(x, mask)
    d = 16 // 4
    with torch.no_grad():
        model.blocks[1].attn.out.weight[:, 2 * d: 3 * d] = 0
        expected = model(x, mask)
    assert torch.allclose(ablated, expected, atol=1e-6)
    assert not torch.allclose(ablated, model_and_set()[0](x, mask), atol=1e-4)  # the head mattered


def test_mean_ablation_changes_nothing_where_a_head_outputs_the_same_everywhere():
    model, _, _ = model_and_set()
    x = torch.randn(1, 1, 16).expand(4, 6, 16).contiguous()  # identical tokens in identical sets
    with torch.no_grad():
        plain = model(x)
        with attention_probe(model, ablate={"blocks.0.attn": [0, 1, 2, 3]}, mode="mean"):
            ablated = model(x)
    assert torch.allclose(plain, ablated, atol=1e-6)


def test_detection_patterns_match_a_loop_over_positions():
    tokens = torch.randint(0, 4, (5, 12), generator=torch.Generator().manual_seed(1))
    patterns = {kind: detection_pattern(tokens, kind) for kind in ("previous", "duplicate", "induction")}
    for b in range(5):
        for i in range(12):
            for j in range(12):
                assert patterns["previous"][b, i, j] == float(j == i - 1)
                assert patterns["duplicate"][b, i, j] == float(j < i and tokens[b, j] == tokens[b, i])
                assert patterns["induction"][b, i, j] == float(1 <= j <= i and tokens[b, j - 1] == tokens[b, i])


def test_an_induction_head_built_by_hand_scores_one_and_a_previous_token_head_scores_one():
    half = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    tokens = torch.cat([half, half])[None]  # a random segment, repeated
    n = 16
    induction = torch.zeros(1, 1, n, n)
    previous = torch.zeros(1, 1, n, n)
    for i in range(n):
        induction[0, 0, i, i - 8 + 1 if i >= 8 else 0] = 1.0  # second half: the token after the earlier copy
        previous[0, 0, i, max(i - 1, 0)] = 1.0
    scores = {kind: head_scores(torch.cat([induction, previous], 1), detection_pattern(tokens, kind))
              for kind in ("induction", "previous")}
    assert scores["induction"][0] == pytest.approx(8 / 16)  # 8 of 16 rows can attend to an induction target
    assert scores["previous"][1] == pytest.approx(15 / 16)  # row 0 has no previous token
    assert scores["induction"][1] < 0.1 and scores["previous"][0] == pytest.approx(1 / 16)


def test_bad_probe_requests_are_refused():
    model, _, _ = model_and_set()
    with pytest.raises(ValueError, match="no attention module blocks.7.attn"):
        with attention_probe(model, ablate={"blocks.7.attn": [0]}):
            pass
    with pytest.raises(ValueError, match="4 heads"):
        with attention_probe(model, ablate={"blocks.0.attn": [4]}):
            pass
    with pytest.raises(ValueError, match="mode"):
        with attention_probe(model, mode="resample"):
            pass
