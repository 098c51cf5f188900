"""Set transformers and Perceivers: invariance to the order of the set and to padding."""
import pytest
import torch

from backbones.perceiver import PerceiverIO, PerceiverResampler
from backbones.transformer import SetTransformer, TransformerConfig

CFG = TransformerConfig(dim=16, heads=4, mlp_dim=32, depth=2, class_depth=1, dropout=0.0)


def padded_set(seed=0, n=7, pad=3, dim=16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n + pad, dim, generator=g, dtype=torch.float64)
    mask = torch.ones(2, n + pad, dtype=torch.bool)
    mask[:, n:] = False
    return x, mask


@pytest.mark.parametrize("make", [lambda: SetTransformer(CFG), lambda: PerceiverIO(16, CFG, latents=4, outputs=2),
                                  lambda: PerceiverResampler(CFG, latents=3)])
def test_outputs_ignore_order_and_padding(make):
    torch.manual_seed(0)
    model = make().double().eval()
    x, mask = padded_set()
    out = model(x, mask)
    perm = torch.cat([torch.randperm(7), torch.arange(7, 10)])
    assert torch.allclose(model(x[:, perm], mask), out, atol=1e-10)
    garbage = x.clone()
    garbage[:, 7:] = 1e3
    assert torch.allclose(model(garbage, mask), out, atol=1e-10)
    assert torch.allclose(model(x[:, :7]), out, atol=1e-10)  # no padding at all: same answer


def test_pair_bias_changes_the_transformer_output_and_is_permuted_with_the_set():
    torch.manual_seed(1)
    model = SetTransformer(CFG).double().eval()
    x, mask = padded_set(1)
    bias = torch.randn(2, 4, 10, 10, dtype=torch.float64)
    out = model(x, mask, bias)
    assert not torch.allclose(out, model(x, mask))
    perm = torch.cat([torch.randperm(7), torch.arange(7, 10)])
    assert torch.allclose(model(x[:, perm], mask, bias[:, :, perm][:, :, :, perm]), out, atol=1e-10)
