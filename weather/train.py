"""Training the nowcasters: DGMR (adversarial, two discriminator steps per generator step) and the
deterministic U-Net baseline (intensity-weighted MSE), on importance-sampled crops of the radar archive.

DGMR's losses (Ravuri et al. 2021, Methods):
- discriminators: hinge loss of the spatial and of the temporal discriminator on observed and generated
  sequences (context followed by the leads);
- generator: ``-mean(D_spatial) - mean(D_temporal)`` over ``samples`` (6) latent draws per input, each scored
  in one discriminator batch with the observed sequences (as in the pseudocode: the heads' batch centring
  then sees real and generated samples 1:1 in both steps; on generated samples alone it would remove the
  mean score the generator is trying to raise), plus
  ``reg_weight`` (20) times the grid-cell regulariser ``mean(|mean_samples - y| * clip(y, floor, 24))``,
  averaged over all grid cells. The published pseudocode has ``floor = 0``: dry cells then cost nothing, so
  rain forecast where none falls is free whenever the discriminators stop teaching (measured: forecast wet
  area 0.45-0.55 against 0.10-0.14 observed); ``reg_floor = 1`` (the default) weights every cell below
  1 mm/h as a 1 mm/h cell. (A public PyTorch port divides by ``T*H*W`` without parentheses and weights by
  ``max(y + 1, 24)``, which is 24 or more everywhere.) The kernel ``|mean_samples - y|`` charges only the
  samples' mean, so nothing but the discriminators asks the samples to differ, and an ensemble whose members
  are one forecast costs no more than a spread one (measured: rank-histogram reliability index 1.43 of at
  most 1.71 after 480 and 829 steps). ``regulariser = "crps"`` uses the samples' almost fair CRPS of
  ``log1p`` rain instead (:func:`grid_cell_crps`, same weights), which is lowest when the samples are draws
  from (nearly) the distribution the observation is drawn from, so a collapsed ensemble pays for its missing
  spread.
- Adam with betas (0, 0.999), generator LR 5e-5, discriminator LR 2e-4.
The U-Net maps the context to all leads at once (a log-space correction to pysteps' extrapolation, which it
also reads, or with ``base = "persistence"`` to persistence) and minimises the absolute (or with ``loss =
"squared"`` the squared) error of ``log1p(mm/h)``, censored at dry: a forecast below 0 for a dry cell costs
nothing (it is dry after the floor). An intensity-weighted MSE in mm/h,
``mean((f - y)**2 (1 + clip(y, 0, 24)))``, has its minimum above the conditional mean wherever the future is
uncertain, so the forecast rain spreads and intensifies with lead time (measured: CRPS worse than persistence).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from datasets.atomic import atomic_open
from generative.autoencoder import KLAutoencoder
from generative.gan import hinge_discriminator_loss, hinge_generator_loss
from training.adversarial import AdversarialConfig, GanLosses
from training.inference import inference_device
from training.pretrained import Card, cards
from training.recipe import Built, Recipe, load
from training.trainer import TrainerConfig
from weather.baselines import ModelNowcast
from weather.dgmr import DGMR, DGMRConfig, to_rain
from weather.ldm import (LatentNowcastConfig, LatentNowcaster, LatentSamples, autoencoder_loss, fit_detail,
                         fit_spread, rain_autoencoder_config)
from weather.samples import ExtrapolatedSamples, RadarSamples, SamplingConfig, split_folder
from weather.unet import NowcastUNet


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``[..., B, T, H, W]`` over the cells where ``valid`` ``[B, H, W]`` is true."""
    mask = valid[:, None].to(values.dtype).expand_as(values)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def grid_cell_regulariser(samples: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor,
                          floor: float = 0.0) -> torch.Tensor:
    """``mean(|mean_s samples - y| * clip(y, floor, 24))`` over the valid cells.

    Args:
        samples: generator samples ``[S, B, T, H, W]`` mm/h; targets: ``[B, T, H, W]`` mm/h; valid: ``[B, H, W]``.
        floor: smallest cell weight (0 is the published pseudocode, where dry cells weigh nothing).
    """
    return _masked_mean((samples.mean(dim=0) - targets).abs() * targets.clamp(floor, 24.0), valid)


def grid_cell_crps(samples: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, floor: float = 0.0,
                   fair: float = 0.95) -> torch.Tensor:
    """The samples' almost fair CRPS of ``log1p`` rain per cell (Lang et al. 2024, AIFS-CRPS), weighted by
    ``clip(y, floor, 24)`` and averaged over the valid cells, as :func:`grid_cell_regulariser` weights:
    ``mean |X - Y| - (fair / (S (S - 1)) + (1 - fair) / S**2) sum_{s, s'} |X_s - X_s'| / 2`` with ``X =
    log1p(samples)``, ``Y = log1p(y)``. ``fair = 1`` is the fair CRPS (Ferro 2014: unbiased for the CRPS of the
    distribution the samples are drawn from), ``fair = 0`` the CRPS of the samples' empirical distribution
    (which rewards too little spread for few samples). The fair CRPS never pulls the highest sample down
    (its gradient there is 0 above ``Y``) nor the lowest up, so one sample per cell can run away at no cost:
    in training (``lr`` 2e-4) samples reached the 1,000 mm/h cap within 20 steps, in ``log1p`` rain as in mm/h.
    With ``fair < 1`` the outermost samples are pulled in by ``(1 - fair) / S**2``.

    Args:
        samples: generator samples ``[S, B, T, H, W]`` mm/h (S >= 2); targets: ``[B, T, H, W]`` mm/h; valid:
            ``[B, H, W]``.
        floor: smallest cell weight.
        fair: weight of the fair CRPS in the mix.
    """
    s = samples.shape[0]
    if s < 2:
        raise ValueError(f"the CRPS of an ensemble needs at least 2 samples, got {s}")
    members, observed = torch.log1p(samples), torch.log1p(targets)
    ranked = members.sort(dim=0).values     # sum over pairs from the sorted samples, 2 sum_i (2i - S - 1) x_(i)
    rank_weights = (2 * torch.arange(1, s + 1, device=samples.device, dtype=samples.dtype) - s - 1)
    pair_sum = 2 * (rank_weights.reshape(-1, *[1] * targets.ndim) * ranked).sum(dim=0)
    crps = (members - observed).abs().mean(dim=0) - (fair / (s * (s - 1)) + (1 - fair) / s ** 2) * pair_sum / 2
    return _masked_mean(crps * targets.clamp(floor, 24.0), valid)


def discriminator_loss(generator: nn.Module, discriminator: nn.Module, batch: dict
                       ) -> tuple[torch.Tensor, dict[str, float]]:
    inputs, targets = batch["inputs"], batch["targets"]
    with torch.no_grad():
        fake = generator(inputs, extrapolation=batch.get("extrapolation"))
    scores = discriminator(torch.cat([torch.cat([inputs, targets], 1), torch.cat([inputs, fake], 1)]))
    real, fake = scores.chunk(2)
    loss = hinge_discriminator_loss(real[:, 0], fake[:, 0]) + hinge_discriminator_loss(real[:, 1], fake[:, 1])
    return loss, {"d_real": float(real.detach().mean()), "d_fake": float(fake.detach().mean())}


def generator_loss(generator: nn.Module, discriminator: nn.Module, batch: dict, cfg: DGMRConfig
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    inputs, targets = batch["inputs"], batch["targets"]
    repeated = inputs.repeat(cfg.samples, 1, 1, 1)                       # [S * B, C, H, W], sample-major
    extrapolation = batch.get("extrapolation")
    samples = generator(repeated, extrapolation=None if extrapolation is None else
                        extrapolation.repeat(cfg.samples, 1, 1, 1))       # [S * B, T, H, W]
    real = torch.cat([repeated, targets.repeat(cfg.samples, 1, 1, 1)], 1)
    scores = discriminator(torch.cat([real, torch.cat([repeated, samples], 1)]))[len(real):]   # [S * B, 2]
    adversarial = hinge_generator_loss(scores[:, 0]) + hinge_generator_loss(scores[:, 1])
    samples = samples.reshape(cfg.samples, *targets.shape)
    kernel = grid_cell_crps if cfg.regulariser == "crps" else grid_cell_regulariser
    regulariser = kernel(samples, targets, batch["valid"], cfg.reg_floor)
    loss = adversarial + cfg.reg_weight * regulariser
    with torch.no_grad():   # spread (RMS of the samples' std) against the RMS error of their mean, mm/h
        spread = _masked_mean(samples.var(dim=0), batch["valid"]).sqrt()
        error = _masked_mean((samples.mean(dim=0) - targets).square(), batch["valid"]).sqrt()
    return loss, {"adversarial": float(adversarial.detach()), "grid_cell": float(regulariser.detach()),
                  "spread": float(spread), "mean_rmse": float(error)}


def censored_log_error(log_forecast: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log_forecast - log1p(y)``, but 0 where the target is dry and the forecast is below 0 (dry too)."""
    error = log_forecast - torch.log1p(targets)
    return torch.where((targets <= 0) & (log_forecast < 0), torch.zeros_like(error), error)


def unet_loss(model: nn.Module, batch: dict, power: int = 2) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean censored log error to the ``power``: 2 (squared) gives the conditional mean of ``log1p`` rain, 1
    (absolute) its conditional median, which is the median of the rain itself (a monotone transform) and so
    minimises the mean absolute error in mm/h, a deterministic forecast's CRPS."""
    log_forecast, targets = model.log_forecast(batch["inputs"], batch.get("extrapolation")), batch["targets"]
    loss = _masked_mean(censored_log_error(log_forecast, targets).abs() ** power, batch["valid"])
    forecast = to_rain(log_forecast.detach())
    return loss, {"mae": float(_masked_mean((forecast - targets).abs(), batch["valid"]))}


def dgmr_eval(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """One generator sample: the grid-cell regulariser (as ``loss``) and the mean absolute error."""
    sample = model.generator(batch["inputs"], extrapolation=batch.get("extrapolation"))
    reg = grid_cell_regulariser(sample[None], batch["targets"], batch["valid"], model.cfg.reg_floor)
    return reg, {"mae": float(_masked_mean((sample - batch["targets"]).abs(), batch["valid"]))}


@dataclass
class DGMRRun:
    """A DGMR run; the defaults train a small DGMR on 128 km crops on a CPU (the paper: ``--base 24 --crop 256``,
    on a GPU)."""

    data_dir: str = "runs/data/radar"  # archive with train/ and valid/ (physml data generate radar)
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(crop=128))
    dgmr: DGMRConfig = field(default_factory=lambda: DGMRConfig(base=4))
    eval_crops: int = 64               # validation crops scored at each evaluation
    trainer: AdversarialConfig = field(default_factory=lambda: AdversarialConfig(
        run_dir="runs/weather/dgmr", steps=2000, batch_size=4, lr=5e-5, d_lr=2e-4, betas=(0.0, 0.999),
        grad_clip=None, log_every=10))


@dataclass
class UNetRun:
    """The deterministic U-Net nowcaster's run: a correction to pysteps' extrapolation fitted to the conditional
    median (Adam, censored absolute log error); ``base="persistence"`` and ``loss="squared"`` give the first
    round's recipe, which loses to extrapolation (docs/weather.md)."""

    data_dir: str = "runs/data/radar"  # archive with train/ and valid/ (physml data generate radar)
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(crop=128))
    channels: tuple[int, ...] = (32, 64, 128, 128, 128)  # U-Net width per level
    base: Literal["persistence", "extrapolation"] = "extrapolation"  # the forecast the U-Net corrects
    loss: Literal["squared", "absolute"] = "absolute"  # of the censored log error (absolute: conditional median)
    eval_crops: int = 64               # validation crops scored at each evaluation
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/weather/unet", steps=2000, batch_size=4, lr=1e-3, log_every=10))


def dgmr_model(run: DGMRRun) -> DGMR:
    return DGMR(run.dgmr)


def unet_model(run: UNetRun) -> NowcastUNet:
    return NowcastUNet(run.sampling.context, run.sampling.leads, run.channels, run.base)


def _samples(run: DGMRRun | UNetRun | RainAutoencoderRun | LatentNowcastRun) -> tuple[RadarSamples, RadarSamples]:
    if run.sampling.crop % 32:
        raise ValueError(f"crop must be a multiple of 32 (DGMR's latent grid is crop/32), got {run.sampling.crop}")
    train_data = RadarSamples(split_folder(run.data_dir, "train"), run.sampling, seed=run.trainer.seed)
    eval_data = RadarSamples(split_folder(run.data_dir, "valid"), run.sampling, seed=run.trainer.seed + 1)
    eval_data.crops = eval_data.crops[:run.eval_crops]
    return train_data, eval_data


def build_dgmr(run: DGMRRun) -> Built:
    """DGMR's frame counts follow the sampling; its temporal discriminator never crops more than the crop. On
    ``corrects="extrapolation"`` each crop carries pysteps' extrapolation of its context (computed once)."""
    run.dgmr = dataclasses.replace(run.dgmr, context=run.sampling.context, leads=run.sampling.leads,
                                   temporal_crop=min(run.dgmr.temporal_crop, run.sampling.crop))
    train_data, eval_data = _samples(run)
    if run.dgmr.corrects == "extrapolation":
        train_data, eval_data = ExtrapolatedSamples(train_data), ExtrapolatedSamples(eval_data)
    losses = GanLosses(functools.partial(generator_loss, cfg=run.dgmr), discriminator_loss, dgmr_eval)
    return Built(dgmr_model(run), train_data, eval_data, None, losses)


def build_unet(run: UNetRun) -> Built:
    """On ``base="extrapolation"`` each crop carries pysteps' extrapolation of its context (computed once)."""
    train_data, eval_data = _samples(run)
    if run.base == "extrapolation":
        train_data, eval_data = ExtrapolatedSamples(train_data), ExtrapolatedSamples(eval_data)
    loss = functools.partial(unet_loss, power=2 if run.loss == "squared" else 1)
    return Built(unet_model(run), train_data, eval_data, None, loss)


@dataclass
class RainAutoencoderRun:
    """The latent nowcaster's autoencoder, trained alone first: log-rain frames of the training crops."""

    data_dir: str = "runs/data/radar"  # archive with train/ and valid/ (physml data generate radar)
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(crop=128))
    latent_channels: int = 4           # latent maps per frame (at 1/4 resolution)
    channels: tuple[int, ...] = (16, 32, 32)  # encoder widths (two downsamplings)
    eval_crops: int = 32               # validation crops scored at each evaluation
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/weather/rain_ae", steps=1000, batch_size=8, lr=1e-3, warmup_steps=100, log_every=50))


@dataclass
class LatentNowcastRun:
    """The residual latent-diffusion nowcaster (weather/ldm.py), on a trained rain autoencoder."""

    data_dir: str = "runs/data/radar"  # archive with train/ and valid/ (physml data generate radar)
    autoencoder: str = "runs/weather/rain_ae"  # a `train rain-ae` run folder (frozen; copied into this model)
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(crop=128))
    ldm: LatentNowcastConfig = field(default_factory=LatentNowcastConfig)
    augment: bool = False              # train on the 8 turned and reflected copies of each crop
    first_guess: str = ""              # a `train unet --base extrapolation` run to correct (empty: extrapolation)
    eval_crops: int = 32               # validation crops scored at each evaluation
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/weather/ldm", steps=2000, batch_size=8, lr=3e-4, warmup_steps=200, ema_decay=0.999,
        log_every=50))


def build_autoencoder(run: RainAutoencoderRun) -> Built:
    train_data, eval_data = _samples(run)
    return Built(autoencoder_model(run), train_data, eval_data, None, autoencoder_loss)


def autoencoder_model(run: RainAutoencoderRun) -> KLAutoencoder:
    return KLAutoencoder(rain_autoencoder_config(run.latent_channels, run.channels))


def ldm_model(run: LatentNowcastRun) -> LatentNowcaster:
    return LatentNowcaster(run.ldm)


def ldm_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    return model(batch["context"], batch["first_guess"], batch["future"]), {}


def residual_scale(data: LatentSamples, crops: int = 64) -> float:
    """Standard deviation of the residual latents ``z_future - z_first_guess`` over the first crops."""
    items = [data[i] for i in range(min(crops, len(data)))]
    return float(torch.stack([item["future"] - item["first_guess"] for item in items]).std())


def build_ldm(run: LatentNowcastRun) -> Built:
    """Copies the autoencoder's (and the first-guess U-Net's) weights and shapes into the nowcaster and fixes
    the residual scale."""
    autoencoder, ae_run = load(run.autoencoder, [AUTOENCODER_RECIPE])
    deterministic, unet_run = load(run.first_guess, [UNET_RECIPE]) if run.first_guess else (None, None)
    if unet_run is not None and (unet_run.base != "extrapolation" or unet_run.sampling.leads != run.sampling.leads
                                 or unet_run.sampling.context != run.sampling.context):
        raise ValueError(f"{run.first_guess}: the first guess must be a U-Net on extrapolation (--base "
                         f"extrapolation) with {run.sampling.context} context frames and {run.sampling.leads} leads")
    train_crops, eval_crops = _samples(run)
    train_data = LatentSamples(train_crops, autoencoder, augment=run.augment, deterministic=deterministic)
    eval_data = LatentSamples(eval_crops, autoencoder, deterministic=deterministic)
    run.ldm = dataclasses.replace(run.ldm, context=run.sampling.context, leads=run.sampling.leads,
                                  latent_channels=ae_run.latent_channels, autoencoder_channels=ae_run.channels,
                                  residual_scale=residual_scale(train_data),
                                  first_guess_unet=tuple(unet_run.channels) if unet_run else ())
    model = ldm_model(run)
    model.autoencoder.load_state_dict(autoencoder.state_dict())
    if deterministic is not None:
        model.deterministic.load_state_dict(deterministic.state_dict())
    return Built(model, train_data, eval_data, None, ldm_loss)


def calibrate(run_dir: str, members: int = 6, crops: int = 64, seed: int = 0, score: str = "crps") -> Path:
    """Fit the latent nowcaster's per-lead weights of the first guess's small scales
    (:func:`weather.ldm.fit_detail`), then, with those, its per-lead ensemble inflation
    (:func:`weather.ldm.fit_spread`), on the validation split of its archive (scored on the crops' centres,
    as ``evaluate`` scores), and write both into ``run_dir/config.json`` (``run.ldm.detail``,
    ``run.ldm.spread``), where ``evaluate`` and ``nowcast`` find them. Opt-in; the effect on the reference
    run is in docs/weather.md. Returns the config's path.

    Args:
        run_dir: a ``train ldm`` run folder (its selected checkpoint is the one calibrated).
        members: ensemble members per validation crop (as many as the forecasts will have).
        crops: validation crops.
        seed: seeds the members.
        score: what the factors minimise: ``crps`` (mean CRPS) or ``reliability`` (the rank histograms'
            reliability index: flatter histograms, at a cost in CRPS and CSI on the reference run).
    """
    model, run = load(run_dir, [LDM_RECIPE])
    valid = RadarSamples(split_folder(run.data_dir, "valid"), run.sampling, seed=run.trainer.seed + 1)
    valid.crops = valid.crops[:crops]
    margin = run.sampling.crop // 4
    model.cfg.detail = fit_detail(model, valid, margin)
    factors = fit_spread(model, valid, members, torch.Generator().manual_seed(seed), margin=margin, score=score)
    path = Path(run_dir) / "config.json"
    config = json.loads(path.read_text())
    config["run"]["ldm"] |= {"detail": list(model.cfg.detail), "spread": list(factors)}
    with atomic_open(path) as fh:
        json.dump(config, fh, indent=2)
    print(f"{path}: weight of the first guess's small scales per lead "
          f"{', '.join(f'{b:.2f}' for b in model.cfg.detail)}; spread inflation per lead "
          f"{', '.join(f'{f:.2f}' for f in factors)}")
    return path


DGMR_RECIPE = Recipe("dgmr", "DGMR (adversarial ensemble nowcaster) on the radar archive", DGMRRun, build_dgmr,
                     dgmr_model)
UNET_RECIPE = Recipe("unet", "deterministic U-Net nowcaster on the radar archive", UNetRun, build_unet, unet_model)
AUTOENCODER_RECIPE = Recipe("rain-ae", "KL autoencoder of rain frames, for the latent nowcaster",
                            RainAutoencoderRun, build_autoencoder, autoencoder_model)
LDM_RECIPE = Recipe("ldm", "residual latent-diffusion nowcaster on pysteps extrapolation (after LDCast)",
                    LatentNowcastRun, build_ldm, ldm_model)
NOWCASTERS = [DGMR_RECIPE, UNET_RECIPE, LDM_RECIPE]
LABELS = {"dgmr": "DGMR", "unet": "U-Net", "ldm": "latent diffusion"}
SHIPPED: dict[str, Card] = cards(Path(__file__).with_name("pretrained"))  # --pretrained NAME (docs/models.md)


def load_nowcaster(run_dir: str | Path,
                   device: str = "cpu") -> tuple[ModelNowcast, DGMRRun | UNetRun | LatentNowcastRun]:
    """A trained nowcaster behind the baselines' ``forecast`` interface (DGMR and the latent nowcaster draw one
    member per latent draw, the U-Net gives one), labelled ``KIND (folder name)``, on ``device``, and its run."""
    model, run = load(run_dir, NOWCASTERS, device=str(inference_device(device)))
    name = next(r.name for r in NOWCASTERS if isinstance(run, r.run_type))
    network = model.generator if isinstance(run, DGMRRun) else model
    return ModelNowcast(network, f"{LABELS[name]} ({Path(run_dir).name})", stochastic=name != "unet"), run
