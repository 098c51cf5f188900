import pytest
import torch

from generative.unet import UNet, UNetConfig


def test_calorimeter_unet_is_equivariant_under_azimuthal_rotation():
    """On the calorimeter grid (45 layers, 16 alpha bins, 9 rings: odd sizes, padded internally), rotating the
    shower and its conditioning maps by a multiple of the downsampling factor in alpha rotates the output alike,
    and every parameter gets a gradient."""
    torch.manual_seed(0)
    net = UNet(UNetConfig(dim=3, channels=(8, 16), cond_channels=1, circular=(False, True, False))).double().eval()
    x = torch.randn(2, 1, 45, 16, 9, dtype=torch.float64)
    cond = torch.randn(2, 1, 45, 16, 9, dtype=torch.float64)
    t = torch.tensor([3, 700])
    out = net(x, t, cond=cond)
    rotated = net(torch.roll(x, 6, dims=3), t, cond=torch.roll(cond, 6, dims=3))
    assert torch.allclose(rotated, torch.roll(out, 6, dims=3), atol=1e-10)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_circular_axis_gives_rotation_equivariance():
    """Shifting the azimuthal bins by a multiple of the downsampling factor shifts the output alike."""
    torch.manual_seed(1)
    net = UNet(UNetConfig(dim=2, channels=(8, 8), circular=(True, False))).double().eval()
    x = torch.randn(1, 1, 16, 9, dtype=torch.float64)
    t = torch.tensor([10])
    shifted = net(torch.roll(x, 4, dims=2), t)
    assert torch.allclose(shifted, torch.roll(net(x, t), 4, dims=2), atol=1e-10)


def test_context_is_an_unordered_set_of_tokens_that_matters():
    """Cross-attention without positions: permuting the context tokens leaves the output unchanged, while other
    tokens or another time change it; a network with cross-attention refuses to run without its context."""
    torch.manual_seed(2)
    net = UNet(UNetConfig(dim=2, channels=(8, 16), context_dim=4)).double().eval()
    x, ctx = torch.randn(1, 1, 12, 12, dtype=torch.float64), torch.randn(1, 3, 4, dtype=torch.float64)
    base = net(x, torch.tensor([5]), context=ctx)
    assert torch.allclose(net(x, torch.tensor([5]), context=ctx[:, [2, 0, 1]]), base, atol=1e-12)
    assert not torch.allclose(base, net(x, torch.tensor([500]), context=ctx))
    assert not torch.allclose(base, net(x, torch.tensor([5]), context=ctx + 1))
    with pytest.raises(ValueError, match="context"):
        net(x, torch.tensor([5]))


def test_learns_to_denoise_better_than_identity():
    """Trained briefly as a denoiser of smooth random fields (Gaussian bumps), the U-Net's estimate of the clean
    field from a noisy one beats returning the noisy input on fresh samples."""
    torch.manual_seed(4)
    grid = torch.linspace(-1, 1, 16)

    def fields(n):
        centre = torch.rand(n, 2, 1, 1) * 1.2 - 0.6
        return torch.exp(-((grid.view(1, 1, 16) - centre[:, :1]) ** 2 + (grid.view(1, 16, 1) - centre[:, 1:]) ** 2)
                         / 0.1)  # [n, 1, 16, 16]

    net = UNet(UNetConfig(dim=2, channels=(16, 32)))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    t = torch.zeros(32, dtype=torch.long)
    for _ in range(200):
        clean = fields(32)
        noisy = clean + 0.3 * torch.randn_like(clean)
        loss = (noisy + net(noisy, t) - clean).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    clean = fields(64)
    noisy = clean + 0.3 * torch.randn_like(clean)
    with torch.no_grad():
        denoised = noisy + net(noisy, torch.zeros(64, dtype=torch.long))
    assert (denoised - clean).square().mean() < 0.3 * (noisy - clean).square().mean()


def test_overfits_one_batch():
    torch.manual_seed(3)
    net = UNet(UNetConfig(dim=2, channels=(16, 32)))
    x, target, t = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8), torch.tensor([1, 50, 100, 900])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = (net(x, t) - target).square().mean()
        loss.backward()
        opt.step()
        first = first or loss.item()
    assert loss.item() < 0.1 * first


def test_channel_norm_makes_the_interior_independent_of_the_domain_size():
    """A U-Net trained on crops must forecast the same interior on a larger domain: with per-position channel
    norms it does exactly (beyond the receptive field); with GroupNorm the image-wide statistics change it."""
    torch.manual_seed(0)
    x = torch.rand(1, 4, 256, 256, dtype=torch.double) * 3
    t = torch.zeros(1, dtype=torch.double)
    change = {}
    for norm in ("channel", "group"):
        net = UNet(UNetConfig(dim=2, in_channels=4, out_channels=3, channels=(8, 16, 16), norm=norm)).double()
        with torch.no_grad():
            whole = net(x, t)[..., 64:192, 64:192]
            crop = net(x[:, :, 64:192, 64:192], t)
        change[norm] = float((whole - crop)[..., 56:72, 56:72].abs().max())
    assert change["channel"] == 0.0 and change["group"] > 1e-2
