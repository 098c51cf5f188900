"""Training the nowcasters: DGMR (adversarial, two discriminator steps per generator step) and the
deterministic U-Net baseline (intensity-weighted MSE), on importance-sampled crops of the radar archive.

DGMR's losses (Ravuri et al. 2021, Methods):
- discriminators: hinge loss of the spatial and of the temporal discriminator on observed and generated
  sequences (context followed by the leads);
- generator: ``-mean(D_spatial) - mean(D_temporal)`` over ``samples`` (6) latent draws per input, plus
  ``reg_weight`` (20) times the grid-cell regulariser ``mean(|mean_samples - y| * clip(y, 0, 24))``, averaged
  over all grid cells (the published pseudocode; a public PyTorch port divides by ``T*H*W`` without
  parentheses and weights by ``max(y + 1, 24)``, both wrong);
- Adam with betas (0, 0.999), generator LR 5e-5, discriminator LR 2e-4.
The U-Net maps the context to all leads at once (a log-space correction to persistence) and minimises
``mean((f - y)**2 * (1 + clip(y, 0, 24)))``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from generative.gan import hinge_discriminator_loss, hinge_generator_loss
from generative.unet import UNet, UNetConfig
from training.adversarial import AdversarialConfig, AdversarialTrainer
from training.checkpoint import load_run
from training.trainer import Trainer, TrainerConfig
from weather.dgmr import DGMR, MAX_RAIN, DGMRConfig
from weather.samples import RadarSamples, SamplingConfig, split_folder

MODELS = ("dgmr", "unet")


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``[..., B, T, H, W]`` over the cells where ``valid`` ``[B, H, W]`` is true."""
    mask = valid[:, None].to(values.dtype).expand_as(values)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def grid_cell_regulariser(samples: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``mean(|mean_s samples - y| * clip(y, 0, 24))`` over the valid cells; samples ``[S, B, T, H, W]`` mm/h."""
    return _masked_mean((samples.mean(dim=0) - targets).abs() * targets.clamp(0.0, 24.0), valid)


def discriminator_loss(generator: nn.Module, discriminator: nn.Module, batch: dict
                       ) -> tuple[torch.Tensor, dict[str, float]]:
    inputs, targets = batch["inputs"], batch["targets"]
    with torch.no_grad():
        fake = generator(inputs)
    scores = discriminator(torch.cat([torch.cat([inputs, targets], 1), torch.cat([inputs, fake], 1)]))
    real, fake = scores.chunk(2)
    loss = hinge_discriminator_loss(real[:, 0], fake[:, 0]) + hinge_discriminator_loss(real[:, 1], fake[:, 1])
    return loss, {"d_real": float(real.detach().mean()), "d_fake": float(fake.detach().mean())}


def generator_loss(generator: nn.Module, discriminator: nn.Module, batch: dict, cfg: DGMRConfig
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    inputs, targets = batch["inputs"], batch["targets"]
    repeated = inputs.repeat(cfg.samples, 1, 1, 1)                       # [S * B, C, H, W], sample-major
    samples = generator(repeated)                                        # [S * B, T, H, W]
    scores = discriminator(torch.cat([repeated, samples], 1))            # [S * B, 2]
    adversarial = hinge_generator_loss(scores[:, 0]) + hinge_generator_loss(scores[:, 1])
    regulariser = grid_cell_regulariser(samples.reshape(cfg.samples, *targets.shape), targets, batch["valid"])
    loss = adversarial + cfg.reg_weight * regulariser
    return loss, {"adversarial": float(adversarial.detach()), "grid_cell": float(regulariser.detach())}


class NowcastUNet(nn.Module):
    """The deterministic baseline: context ``[B, C, H, W]`` mm/h -> leads ``[B, T, H, W]`` mm/h in one pass.

    It predicts a correction to persistence in log space, ``log1p(f_t) = relu(log1p(x_last) + u_t)``, with the
    U-Net's last layer zero-initialised: training starts from persistence, dry pixels can be exactly dry, and
    rates stay below :data:`weather.dgmr.MAX_RAIN`.
    """

    def __init__(self, context: int = 4, leads: int = 18, channels: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        self.net = UNet(UNetConfig(dim=2, in_channels=context, out_channels=leads, channels=tuple(channels)))
        last = self.net.head[-1].conv
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        t = torch.zeros(inputs.shape[0], device=inputs.device)  # no diffusion time: a constant embedding
        x = torch.log1p(inputs)
        log_rain = torch.relu(x[:, -1:] + self.net(x, t)).clamp(max=float(np.log1p(MAX_RAIN)))
        return torch.expm1(log_rain)


def unet_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    forecast, targets = model(batch["inputs"]), batch["targets"]
    loss = _masked_mean((forecast - targets) ** 2 * (1.0 + targets.clamp(0.0, 24.0)), batch["valid"])
    return loss, {"mae": float(_masked_mean((forecast - targets).detach().abs(), batch["valid"]))}


def dgmr_eval(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """One generator sample: the grid-cell regulariser (as ``loss``) and the mean absolute error."""
    sample = model.generator(batch["inputs"])
    reg = grid_cell_regulariser(sample[None], batch["targets"], batch["valid"])
    return reg, {"mae": float(_masked_mean((sample - batch["targets"]).abs(), batch["valid"]))}


@dataclass
class NowcastRun:
    """Everything a nowcaster training run needs; the defaults train a small DGMR on 64 km crops on a CPU."""

    data_dir: str = "runs/data/radar"
    model: str = "dgmr"
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(crop=64))
    dgmr: DGMRConfig = field(default_factory=lambda: DGMRConfig(base=4, temporal_crop=64))
    unet_channels: tuple[int, ...] = (32, 64, 128)
    eval_crops: int = 64
    trainer: AdversarialConfig = field(default_factory=lambda: AdversarialConfig(
        run_dir="runs/weather/dgmr", steps=2000, batch_size=4, lr=5e-5, d_lr=2e-4, betas=(0.0, 0.999),
        grad_clip=None, log_every=10, eval_every=500, checkpoint_every=250))

    def __post_init__(self) -> None:
        if self.model == "unet":  # plain Adam-style settings instead of DGMR's (0, 0.999) and no clipping
            self.trainer.betas, self.trainer.grad_clip, self.trainer.lr = (0.9, 0.999), 1.0, 1e-3


def build_model(run: NowcastRun) -> nn.Module:
    if run.model == "dgmr":
        return DGMR(run.dgmr)
    if run.model == "unet":
        return NowcastUNet(run.sampling.context, run.sampling.leads, run.unet_channels)
    raise ValueError(f"model must be one of {', '.join(MODELS)}, got {run.model!r}")


def train(run: NowcastRun) -> dict[str, float]:
    """Train ``run.model``; returns the last evaluation metrics. Checkpoints and logs go to the run folder."""
    if run.sampling.crop % 32:
        raise ValueError(f"crop must be a multiple of 32 (DGMR's latent grid is crop/32), got {run.sampling.crop}")
    if (run.sampling.context, run.sampling.leads) != (run.dgmr.context, run.dgmr.leads):
        run.dgmr = dataclasses.replace(run.dgmr, context=run.sampling.context, leads=run.sampling.leads)
    train_data = RadarSamples(split_folder(run.data_dir, "train"), run.sampling, seed=run.trainer.seed)
    eval_data = RadarSamples(split_folder(run.data_dir, "valid"), run.sampling, seed=run.trainer.seed + 1)
    eval_data.crops = eval_data.crops[:run.eval_crops]
    model = build_model(run)
    config = {"run": dataclasses.asdict(run), "data_dir": run.data_dir, "model": run.model}
    if run.model == "dgmr":
        trainer = AdversarialTrainer(model, lambda g, d, b: generator_loss(g, d, b, run.dgmr), discriminator_loss,
                                     dgmr_eval, train_data, run.trainer, eval_data=eval_data, run_config=config)
    else:
        plain = TrainerConfig(**{f.name: getattr(run.trainer, f.name) for f in dataclasses.fields(TrainerConfig)})
        trainer = Trainer(model, unet_loss, train_data, plain, eval_data=eval_data, run_config=config)
    return trainer.fit()


def load_nowcaster(run_dir: str | Path) -> tuple[nn.Module, dict]:
    """The trained generator (DGMR) or U-Net of a ``physml weather train`` run folder, in eval mode, and its
    config. Both map ``[B, context, H, W]`` mm/h to ``[B, leads, H, W]`` mm/h (DGMR: one sample per call)."""
    config, state = load_run(run_dir, "physml weather train")
    saved = config["run"]
    run = NowcastRun(model=config["model"], sampling=SamplingConfig(**saved["sampling"]),
                     dgmr=DGMRConfig(**saved["dgmr"]), unet_channels=tuple(saved["unet_channels"]))
    model = build_model(run)
    model.load_state_dict(state["model"])
    model.eval()
    return (model.generator if run.model == "dgmr" else model), config
