import numpy as np
import pytest
import torch

from training.adversarial import AdversarialConfig, AdversarialTrainer, GanLosses
from weather import train
from weather.dgmr import DGMR, DGMRConfig


def _model(**changes) -> DGMR:
    torch.manual_seed(0)
    return DGMR(DGMRConfig(base=2, temporal_crop=32, leads=5, spatial_frames=3, samples=2, **changes))


@pytest.mark.parametrize("size", [(32, 32), (64, 96)])
def test_generator_shapes_follow_the_input(size):
    model = _model().eval()
    inputs = torch.rand(2, 4, *size) * 5
    with torch.no_grad():
        out = model.generator(inputs)
        scores = model.discriminator(torch.cat([inputs, out], 1))
    assert out.shape == (2, 5, *size) and (out >= 0).all()
    assert scores.shape == (2, 2)


def test_latent_draws_make_an_ensemble():
    model = _model().eval()
    inputs = torch.rand(1, 4, 32, 32) * 5
    with torch.no_grad():
        a = model.generator(inputs, generator=torch.Generator().manual_seed(1))
        b = model.generator(inputs, generator=torch.Generator().manual_seed(1))
        c = model.generator(inputs, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_bad_input_size_is_named():
    with pytest.raises(ValueError, match="divisible by 32"):
        _model().generator(torch.rand(1, 4, 40, 32))


def test_grid_cell_regulariser_is_the_published_formula():
    rng = np.random.default_rng(0)
    samples = rng.lognormal(0, 1.5, (3, 2, 4, 8, 8)).astype(np.float32)
    targets = rng.lognormal(0, 1.5, (2, 4, 8, 8)).astype(np.float32)
    valid = np.ones((2, 8, 8), bool)
    expected = np.mean(np.abs(samples.mean(0) - targets) * np.clip(targets, 0, 24))
    ours = train.grid_cell_regulariser(torch.from_numpy(samples), torch.from_numpy(targets),
                                       torch.from_numpy(valid))
    assert float(ours) == pytest.approx(expected, rel=1e-5)
    buggy = np.mean(np.abs(samples.mean(0) - targets) * np.maximum(targets + 1, 24))  # the port's weight
    assert float(ours) != pytest.approx(buggy, rel=0.1)
    valid[:, :4] = False  # only the valid half counts
    half = np.mean((np.abs(samples.mean(0) - targets) * np.clip(targets, 0, 24))[..., 4:, :])
    assert float(train.grid_cell_regulariser(torch.from_numpy(samples), torch.from_numpy(targets),
                                             torch.from_numpy(valid))) == pytest.approx(half, rel=1e-5)


class _Crops(torch.utils.data.Dataset):
    def __init__(self, n: int = 4) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 9, 32, 32, generator=g) * 4

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"inputs": self.x[i, :4], "targets": self.x[i, 4:], "valid": torch.ones(32, 32, dtype=torch.bool)}


def _params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


@pytest.mark.parametrize("d_steps", [0, 2])
def test_adversarial_step_trains_the_right_part(tmp_path, d_steps):
    model = _model()
    cfg = model.cfg
    config = AdversarialConfig(run_dir=str(tmp_path), steps=1, batch_size=2, lr=1e-3, d_lr=1e-3, betas=(0.0, 0.999),
                               grad_clip=None, d_steps=d_steps, checkpoint_every=1, progress=False)
    losses = GanLosses(lambda g, d, b: train.generator_loss(g, d, b, cfg), train.discriminator_loss, train.dgmr_eval)
    trainer = AdversarialTrainer(model, losses, _Crops(), config)
    g0, d0 = _params(model.generator), _params(model.discriminator)
    metrics = trainer.fit()
    assert not torch.equal(_params(model.generator), g0)
    assert torch.equal(_params(model.discriminator), d0) == (d_steps == 0)
    assert np.isfinite(metrics["grid_cell"])
    saved = torch.load(next((tmp_path / "checkpoints").glob("*.pt")), weights_only=True)
    assert "d_optimizer" in saved


def test_untrained_unet_is_persistence():
    unet = train.NowcastUNet(context=4, leads=3, channels=(8, 16))
    inputs = torch.rand(2, 4, 32, 32) * 10 * (torch.rand(2, 4, 32, 32) < 0.5)
    out = unet(inputs)
    torch.testing.assert_close(out, inputs[:, -1:].expand(-1, 3, -1, -1), rtol=1e-5, atol=1e-5)
    loss, metrics = train.unet_loss(unet, {"inputs": inputs, "targets": inputs[:, :3],
                                           "valid": torch.ones(2, 32, 32, dtype=torch.bool)})
    loss.backward()
    assert unet.net.head[-1].conv.weight.grad.abs().sum() > 0  # the zero layer still learns
