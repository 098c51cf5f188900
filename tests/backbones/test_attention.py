import torch

from backbones.attention import CrossAttention


def test_attention_matches_an_explicit_softmax_and_respects_the_mask():
    torch.manual_seed(0)
    attn = CrossAttention(8, context_dim=6, heads=2).double()
    x, ctx = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 7, 6, dtype=torch.float64)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[:, 5:] = False
    out = attn(x, ctx, mask)
    h = attn.norm(x)
    q = attn.q(h).view(2, 5, 2, 4).transpose(1, 2)
    k, v = (t.view(2, 7, 2, 4).transpose(1, 2) for t in attn.kv(ctx).chunk(2, dim=-1))
    scores = (q @ k.transpose(-1, -2)) / 2.0
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    expected = x + attn.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 8))
    assert torch.allclose(out, expected)
    changed = ctx.clone()
    changed[:, 5:] += 10.0  # masked tokens have no effect
    assert torch.allclose(attn(x, changed, mask), out)


def test_self_attention_is_permutation_equivariant():
    torch.manual_seed(1)
    attn = CrossAttention(8, heads=4).double()
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    perm = torch.randperm(6)
    assert torch.allclose(attn(x[:, perm]), attn(x)[:, perm])


def test_additive_bias_enters_the_logits_and_masked_keys_stay_masked():
    torch.manual_seed(2)
    attn = CrossAttention(8, heads=2).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    bias = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    h = attn.norm(x)
    q, k, v = (t.view(2, 5, 2, 4).transpose(1, 2) for t in (attn.q(h), *attn.kv(h).chunk(2, dim=-1)))
    scores = (q @ k.transpose(-1, -2)) / 2.0 + bias
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    expected = x + attn.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 8))
    assert torch.allclose(attn(x, mask=mask, bias=bias), expected)
