import torch

from generative.autoencoder import AutoencoderConfig, KLAutoencoder


def test_shapes_in_3d_with_odd_sizes():
    torch.manual_seed(0)
    ae = KLAutoencoder(AutoencoderConfig(dim=3, channels=(8, 16), circular=(False, True, False)))
    x = torch.randn(2, 1, 45, 16, 9)
    mean, logvar = ae.encode(x)
    assert mean.shape == (2, 4, 23, 8, 5) and logvar.shape == mean.shape
    recon, kl = ae(x)
    assert recon.shape == x.shape and kl.item() > 0


def test_kl_term_equals_torch_distributions():
    torch.manual_seed(1)
    ae = KLAutoencoder(AutoencoderConfig(dim=2, channels=(8,))).double()
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    mean, logvar = ae.encode(x)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    expected = torch.distributions.kl_divergence(q, p).flatten(1).sum(1).mean()
    assert torch.allclose(ae(x, sample=False)[1], expected)


def test_learns_to_reconstruct_smooth_fields():
    torch.manual_seed(2)
    ae = KLAutoencoder(AutoencoderConfig(dim=2, channels=(16, 32)))
    grid = torch.linspace(0, 1, 12)
    phases = torch.rand(16, 1, 1, 1) * 6.28
    x = torch.sin(6.28 * grid[None, None, :, None] + phases) * torch.cos(3.14 * grid[None, None, None, :])
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    first = ae.loss(x).item()
    for _ in range(200):
        opt.zero_grad()
        loss = ae.loss(x)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
