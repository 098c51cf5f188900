"""A small regression task shared by the trainer tests and the torchrun script."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from training import Trainer, TrainerConfig, seed_everything


def make_data(n: int = 96, dtype: torch.dtype = torch.float64) -> TensorDataset:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(n, 4, generator=g, dtype=dtype)
    y = torch.tanh(0.5 * x @ torch.tensor([1.0, -2.0, 0.5, 1.5], dtype=dtype))[:, None]
    return TensorDataset(x, y)


def noisy_mse(model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE with input noise drawn from the global RNG, so resumes must restore RNG states exactly."""
    x, y = batch
    x = x + 0.01 * torch.randn_like(x)
    loss = nn.functional.mse_loss(model(x), y)
    return loss, {"rmse": float(loss.detach().sqrt())}


def mse(model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
    x, y = batch
    return nn.functional.mse_loss(model(x), y), {}


def make_trainer(run_dir, loss_fn=noisy_mse, dropout: float = 0.1, dtype: torch.dtype = torch.float64,
                 eval_metrics=None, **overrides) -> Trainer:
    """Dropout and input noise (the default loss) draw from the RNGs; the DDP check turns both off. The model
    and data are float64 unless ``dtype`` says otherwise (autocast to bf16 acts on float32 only)."""
    seed_everything(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1)).to(dtype)
    settings = dict(steps=30, batch_size=8, lr=1e-2, schedule="cosine", log_every=1, checkpoint_every=10,
                    keep_checkpoints=None, progress=False, device="cpu")
    cfg = TrainerConfig(run_dir=str(run_dir), **{**settings, **overrides})
    return Trainer(model, loss_fn, make_data(dtype=dtype), cfg, eval_data=make_data(20, dtype),
                   eval_metrics=eval_metrics)


def losses(run_dir) -> list[tuple[int, float]]:
    import json
    from pathlib import Path

    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if r["split"] == "train"]


class ToyGan(nn.Module):
    """A conditional 'generator' (linear map of x) and a linear critic of 4-vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(4, 1).double()
        self.discriminator = nn.Linear(1, 1).double()


def gan_d_loss(g: nn.Module, d: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
    x, y = batch
    with torch.no_grad():
        fake = g(x)
    real_score, fake_score = d(torch.cat([y, fake])).chunk(2)  # one call of the (DDP-wrapped) critic
    return torch.relu(1 - real_score).mean() + torch.relu(1 + fake_score).mean(), {}


def gan_g_loss(g: nn.Module, d: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
    x, y = batch
    fake = g(x)
    return -d(fake).mean() + nn.functional.mse_loss(fake, y), {}


def make_gan_trainer(run_dir, **overrides):
    from training.adversarial import AdversarialConfig, AdversarialTrainer, GanLosses

    seed_everything(0)
    settings = dict(steps=30, batch_size=8, lr=1e-2, d_lr=2e-2, betas=(0.0, 0.999), log_every=1,
                    checkpoint_every=10, keep_checkpoints=None, progress=False, device="cpu")
    cfg = AdversarialConfig(run_dir=str(run_dir), **{**settings, **overrides})
    losses = GanLosses(gan_g_loss, gan_d_loss, lambda m, b: gan_g_loss(m.generator, m.discriminator, b))
    return AdversarialTrainer(ToyGan(), losses, make_data(), cfg, eval_data=make_data(20))
