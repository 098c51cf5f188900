import pytest
import torch

from generative import gan


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    # relu(1 - real) = [0, 0.5] -> 0.25; relu(1 + fake) = [0, 1.5] -> 0.75
    assert float(gan.hinge_discriminator_loss(real, fake)) == pytest.approx(1.0)
    assert float(gan.hinge_generator_loss(fake)) == pytest.approx(0.75)


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    conv = gan.sn_conv(3, 8, 3)
    conv.train()
    for _ in range(30):  # power iterations run on forward passes in training mode
        conv(torch.randn(1, 3, 8, 8))
    conv.eval()
    weight = conv.weight.reshape(8, -1)
    assert float(torch.linalg.matrix_norm(weight, ord=2)) == pytest.approx(1.0, rel=1e-2)


@pytest.mark.parametrize("dims, shape", [(2, (2, 3, 16, 12)), (3, (2, 3, 6, 16, 12))])
def test_dblock_halves_every_axis(dims, shape):
    block = gan.DBlock(3, 5, dims=dims)
    out = block(torch.randn(shape))
    assert out.shape == (shape[0], 5, *(n // 2 for n in shape[2:]))
    assert gan.DBlock(3, 5, dims=dims, down=False)(torch.randn(shape)).shape[2:] == shape[2:]


def test_dblock_keeps_axes_of_length_one():
    assert gan.DBlock(2, 4)(torch.randn(1, 2, 1, 1)).shape == (1, 4, 1, 1)


def test_gblock_and_lblock_shapes():
    assert gan.GBlock(4, 2, up=True)(torch.randn(2, 4, 5, 6)).shape == (2, 2, 10, 12)
    x = torch.randn(2, 4, 5, 6)
    block = gan.LBlock(4, 10)
    block.eval()
    assert block(x).shape == (2, 10, 5, 6)
    assert gan.LBlock(8, 4)(torch.randn(1, 8, 3, 3)).shape == (1, 4, 3, 3)


def test_self_attention_starts_as_identity_and_is_permutation_equivariant():
    torch.manual_seed(0)
    attn = gan.SelfAttention2d(16)
    x = torch.randn(2, 16, 4, 5)
    torch.testing.assert_close(attn(x), x)
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    perm = torch.randperm(20)
    flat = attn(x).flatten(2)[..., perm]
    permuted = attn(x.flatten(2)[..., perm].reshape(2, 16, 4, 5)).flatten(2)
    torch.testing.assert_close(flat, permuted, rtol=1e-5, atol=1e-5)
