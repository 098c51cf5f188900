import pytest
import torch

from generative.unet import UNet, UNetConfig


def test_3d_calorimeter_shape_with_odd_sizes_and_conditioning():
    torch.manual_seed(0)
    net = UNet(UNetConfig(dim=3, channels=(8, 16), cond_channels=1, circular=(False, True, False)))
    x = torch.randn(2, 1, 45, 16, 9)
    out = net(x, torch.tensor([3, 700]), cond=torch.ones(2, 1, 45, 16, 9))
    assert out.shape == x.shape
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_circular_axis_gives_rotation_equivariance():
    """Shifting the azimuthal bins by a multiple of the downsampling factor shifts the output alike."""
    torch.manual_seed(1)
    net = UNet(UNetConfig(dim=2, channels=(8, 8), circular=(True, False))).double().eval()
    x = torch.randn(1, 1, 16, 9, dtype=torch.float64)
    t = torch.tensor([10])
    shifted = net(torch.roll(x, 4, dims=2), t)
    assert torch.allclose(shifted, torch.roll(net(x, t), 4, dims=2), atol=1e-10)


def test_time_and_context_change_the_output():
    torch.manual_seed(2)
    net = UNet(UNetConfig(dim=2, channels=(8, 16), context_dim=4)).eval()
    x, ctx = torch.randn(1, 1, 12, 12), torch.randn(1, 3, 4)
    base = net(x, torch.tensor([5]), context=ctx)
    assert not torch.allclose(base, net(x, torch.tensor([500]), context=ctx))
    assert not torch.allclose(base, net(x, torch.tensor([5]), context=ctx + 1))
    with pytest.raises(ValueError, match="context"):
        net(x, torch.tensor([5]))


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
