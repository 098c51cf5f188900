"""A residual latent-diffusion nowcaster on the shared parts (after LDCast, Leinonen et al. 2023).

Three pieces, each from the suite's shared modules:

- a KL autoencoder (:mod:`generative.autoencoder`, per-position channel norms) that compresses one
  ``log1p(mm/h)`` rain frame ``[H, W]`` 4x in each direction to ``latent_channels`` maps ``[h, w] = [H/4, W/4]``;
  trained first and alone (``physml weather train rain-ae``), then frozen;
- a conditioner: a transformer (:mod:`backbones.transformer` blocks) over ``patch`` x ``patch`` patches of the
  latents of the 4 context frames and of the 18 frames of the first guess, with a depthwise
  convolution as position encoding (translation-equivariant, any domain size); every token attends to every
  other, so displacements of any length are in reach; its output is unpatchified to conditioning maps;
- a velocity field (the shared 2-D U-Net, the 18 leads' latents stacked on channels) trained by flow
  matching (:mod:`generative.flow_matching`) on the *residual* ``(z_future - z_guess) / scale``:
  the forecast is a deterministic first guess plus a stochastic correction, so the model only learns what
  the first guess misses. ``scale`` is the residual latents' standard deviation on training data, fixed at
  build.

The first guess (:func:`first_guess`) is pysteps' extrapolation (the model learns what advection misses:
growth, decay, the loss of small scales, where rain appears), or a trained U-Net's correction of it
(``physml weather train unet --base extrapolation``, frozen and copied into the model), whose errors are
smaller than the extrapolation's, so the diffusion model is left a smaller residual (as in CorrDiff).

Sampling: independent Gaussian noise per ensemble member, integrated by Euler or Heun steps
(:class:`generative.flow_matching.FlowSampler`); the members' residuals are spread about their mean by
per-lead factors fitted on validation crops (:func:`fit_spread`, ``physml weather calibrate``: lowest CRPS
or flattest rank histograms; the members cannot carry the small-scale error the autoencoder does not represent),
then added to the first guess's latents; the correction is decoded as a difference, ``log1p(f) =
b_t (log1p(g) - D(z_g)) + D(z_g + s r)``, and rain below the radar's 0.1 mm/h detection limit is set
dry (the archive has none either). With ``b_t = 1`` (the default) a zero residual gives the first guess
exactly (above the detection limit), and the autoencoder's reconstruction error (it blurs the smallest
scales) cancels instead of capping the forecast's skill; ``b_t`` below 1 (:func:`fit_detail`, fitted by
``calibrate``) fades the first guess's small scales, which the latents cannot forecast, as they lose
their skill with lead time. Shapes: context ``[B, C, H, W]`` mm/h, H and W multiples of ``4 * patch``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from backbones.transformer import Block, TransformerConfig
from generative.autoencoder import AutoencoderConfig, KLAutoencoder
from generative.flow_matching import FlowSampler, flow_matching_loss
from generative.unet import UNet, UNetConfig
from weather.baselines import THRESHOLD, extrapolate
from weather.dgmr import to_rain
from weather.metrics import crps_ensemble, rank_counts, reliability_index
from weather.samples import SQUARE_SYMMETRIES, RadarSamples, dihedral
from weather.unet import NowcastUNet


def rain_autoencoder_config(latent_channels: int = 4, channels: tuple[int, ...] = (16, 32, 32)) -> AutoencoderConfig:
    """The rain autoencoder: one log-rain frame in, ``latent_channels`` maps at 1/4 resolution (three widths:
    two downsamplings), channel norms so that crops and whole images encode alike."""
    if len(channels) != 3:
        raise ValueError(f"the rain autoencoder downsamples twice (4x): give 3 widths, got {channels}")
    return AutoencoderConfig(dim=2, in_channels=1, latent_channels=latent_channels, channels=tuple(channels),
                             norm="channel", beta=1e-5)


def encode_frames(autoencoder: KLAutoencoder, rain: torch.Tensor) -> torch.Tensor:
    """Mean latents of every frame: ``[B, T, H, W]`` mm/h -> ``[B, T * z, H/4, W/4]``."""
    b, t, h, w = rain.shape
    mean, _ = autoencoder.encode(torch.log1p(rain).reshape(b * t, 1, h, w))
    return mean.reshape(b, t * mean.shape[1], *mean.shape[2:])


def decode_log_frames(autoencoder: KLAutoencoder, latents: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[B, T * z, h, w]`` -> ``log1p`` rain ``[B, T, H, W]`` (not floored)."""
    z = autoencoder.cfg.latent_channels
    b, tz = latents.shape[:2]
    return autoencoder.decode(latents.reshape(b * tz // z, z, *latents.shape[2:]), size).reshape(b, tz // z, *size)


def detail(autoencoder: KLAutoencoder, rain: torch.Tensor, latents: torch.Tensor | None = None) -> torch.Tensor:
    """What the latents of rain frames miss: ``log1p(x) - D(E(x))`` (the scales below the autoencoder's 4 km
    grid, mostly), ``[B, T, H, W]`` mm/h -> ``[B, T, H, W]`` log rain; ``latents`` are ``E(x)`` if already
    at hand."""
    latents = encode_frames(autoencoder, rain) if latents is None else latents
    return torch.log1p(rain) - decode_log_frames(autoencoder, latents, tuple(rain.shape[-2:]))


def autoencoder_loss(model: KLAutoencoder, batch: dict, frames: int = 4) -> tuple[torch.Tensor, dict[str, float]]:
    """Reconstruction MSE of ``log1p`` rain plus ``beta`` KL, on ``frames`` random frames of each crop (its
    context and future frames alike)."""
    sequence = torch.cat([batch["inputs"], batch["targets"]], 1)
    pick = torch.rand(sequence.shape[:2], device=sequence.device).argsort(1)[:, :frames]
    x = torch.log1p(torch.take_along_dim(sequence, pick[..., None, None], 1)).flatten(0, 1)[:, None]
    reconstruction, kl = model(x)
    mse = F.mse_loss(reconstruction, x)
    return mse + model.cfg.beta * kl, {"mse": float(mse.detach()), "kl": float(kl.detach())}


@dataclass
class LatentNowcastConfig:
    context: int = 4
    leads: int = 18
    latent_channels: int = 4                      # of the autoencoder
    autoencoder_channels: tuple[int, ...] = (16, 32, 32)
    patch: int = 2                                # latent pixels per token side
    dim: int = 128                                # conditioner width
    depth: int = 4                                # conditioner blocks
    heads: int = 4
    cond_channels: int = 64                       # conditioning maps handed to the velocity field
    unet_channels: tuple[int, ...] = (64, 128)    # velocity field widths
    residual_scale: float = 1.0                   # std of the residual latents (set by build)
    sampler: str = "heun"                         # euler or heun
    sampling_steps: int = 8
    spread: tuple[float, ...] = ()                # per-lead ensemble inflation (fit_spread; empty: none)
    detail: tuple[float, ...] = ()                # per-lead weight of the first guess's detail (fit_detail; empty: 1)
    first_guess_unet: tuple[int, ...] = ()        # widths of the first-guess U-Net (set by build; empty: none)


def first_guess(context: torch.Tensor, leads: int, deterministic: NowcastUNet | None = None) -> torch.Tensor:
    """The deterministic forecast the latent nowcaster corrects: pysteps' extrapolation of each context, or
    a trained U-Net's correction of it (``base="extrapolation"``), as CorrDiff (Mardani et al. 2025) puts a
    diffusion model on a regression U-Net's residual.

    Args:
        context: ``[B, C, H, W]`` mm/h.
        leads: frames to forecast.
        deterministic: the U-Net, or None for the extrapolation itself.

    Returns:
        ``[B, leads, H, W]`` mm/h.
    """
    extrapolation = extrapolate(context, leads)
    if deterministic is None:
        return extrapolation
    with torch.no_grad():
        return deterministic(context, extrapolation)


class Conditioner(nn.Module):
    """Latents of context and first guess ``[B, (C + T) z, h, w]`` -> conditioning maps ``[B, c, h, w]``."""

    def __init__(self, cfg: LatentNowcastConfig) -> None:
        super().__init__()
        self.patch = cfg.patch
        features = (cfg.context + cfg.leads) * cfg.latent_channels * cfg.patch ** 2
        self.embed = nn.Linear(features, cfg.dim)
        self.position = nn.Conv2d(cfg.dim, cfg.dim, 3, padding=1, groups=cfg.dim)
        block = TransformerConfig(dim=cfg.dim, heads=cfg.heads, mlp_dim=4 * cfg.dim, depth=cfg.depth, dropout=0.0)
        self.blocks = nn.ModuleList(Block(block) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.cond_channels * cfg.patch ** 2)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        b, _, h, w = latents.shape
        p = self.patch
        tokens = self.embed(F.pixel_unshuffle(latents, p).flatten(2).transpose(1, 2))   # [B, N, D]
        grid = tokens.transpose(1, 2).reshape(b, -1, h // p, w // p)
        tokens = tokens + self.position(grid).flatten(2).transpose(1, 2)
        for block in self.blocks:
            tokens = block(tokens)
        maps = self.out(self.norm(tokens)).transpose(1, 2).reshape(b, -1, h // p, w // p)
        return F.pixel_shuffle(maps, p)


class LatentNowcaster(nn.Module):
    """The nowcaster: :meth:`ensemble` forecasts ``members`` x ``[T, H, W]`` mm/h from one context (one
    first guess, one conditioner pass); :meth:`sample` does it for a batch with given first guesses;
    ``forward`` is the training loss on latents."""

    def __init__(self, cfg: LatentNowcastConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.autoencoder = KLAutoencoder(rain_autoencoder_config(cfg.latent_channels, cfg.autoencoder_channels))
        self.autoencoder.requires_grad_(False)
        self.conditioner = Conditioner(cfg)
        width = cfg.leads * cfg.latent_channels
        self.velocity = UNet(UNetConfig(dim=2, in_channels=width, out_channels=width, channels=cfg.unet_channels,
                                        cond_channels=cfg.cond_channels, norm="channel"))
        self.deterministic = None
        if cfg.first_guess_unet:
            self.deterministic = NowcastUNet(cfg.context, cfg.leads, cfg.first_guess_unet, base="extrapolation")
            self.deterministic.requires_grad_(False)

    def train(self, mode: bool = True) -> LatentNowcaster:
        super().train(mode)
        self.autoencoder.eval()  # frozen
        if self.deterministic is not None:
            self.deterministic.eval()  # frozen
        return self

    def check_size(self, height: int, width: int) -> None:
        unit = 4 * self.cfg.patch
        if height % unit or width % unit:
            raise ValueError(f"the latent nowcaster needs H and W divisible by {unit}, got {height} x {width}")

    def first_guess(self, context: torch.Tensor) -> torch.Tensor:
        """The forecast the residual corrects, of each context ``[B, C, H, W]`` -> ``[B, T, H, W]`` mm/h
        (:func:`first_guess`)."""
        return first_guess(context, self.cfg.leads, self.deterministic)

    def field(self, cond: torch.Tensor):
        """The velocity field ``v(x, t)`` given conditioning maps (flow time in [0, 1], embedded x 1000)."""
        return lambda x, t: self.velocity(x, t * 1000.0, cond)

    def forward(self, z_context: torch.Tensor, z_guess: torch.Tensor, z_future: torch.Tensor
                ) -> torch.Tensor:
        """The training loss: flow matching of the scaled residual latents ``(z_future - z_guess) /
        residual_scale`` given the conditioner's maps (latents as :class:`LatentSamples` gives them)."""
        self.check_size(*(4 * n for n in z_context.shape[-2:]))
        cond = self.conditioner(torch.cat([z_context, z_guess], 1))
        residual = (z_future - z_guess) / self.cfg.residual_scale
        return flow_matching_loss(self.field(cond), residual, times="logit_normal")

    @torch.no_grad()
    def residuals(self, z_context: torch.Tensor, z_guess: torch.Tensor, members: int = 1,
                  generator: torch.Generator | None = None, inflated: bool = True) -> torch.Tensor:
        """``members`` draws of the scaled residual latents of each context: latents ``[B, C z, h, w]``,
        ``[B, T z, h, w]`` -> ``[B * members, T z, h, w]`` (member-minor), their spread inflated by
        ``cfg.spread`` unless ``inflated`` is False."""
        cond = self.conditioner(torch.cat([z_context, z_guess], 1)).repeat_interleave(members, 0)
        sampler = FlowSampler(self.cfg.sampler, self.cfg.sampling_steps)
        residual = sampler.sample(self.field(cond), (cond.shape[0], *z_guess.shape[1:]),
                                  generator=generator, dtype=cond.dtype, device=cond.device)
        if inflated and self.cfg.spread and members > 1:
            residual = inflate(residual, members, self.cfg.spread)
        return residual

    @torch.no_grad()
    def sample(self, context: torch.Tensor, guess: torch.Tensor, members: int = 1,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``members`` forecasts of each context ``[B, C, H, W]`` on its first guess ``[B, T, H, W]`` (mm/h)
        -> ``[B * members, T, H, W]`` mm/h (member-minor)."""
        self.check_size(*context.shape[-2:])
        z_context, z_guess = (encode_frames(self.autoencoder, x) for x in (context, guess))
        residual = self.residuals(z_context, z_guess, members, generator)
        return self.decode(guess, z_guess, residual)

    def decode(self, guess: torch.Tensor, z_guess: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Rain of the members: first guess ``[B, T, H, W]`` mm/h, its latents ``[B, T z, h, w]`` and the
        members' scaled residuals ``[B * members, T z, h, w]`` -> ``[B * members, T, H, W]`` mm/h."""
        members = residual.shape[0] // guess.shape[0]
        size = tuple(guess.shape[-2:])
        base = detail(self.autoencoder, guess, z_guess)
        if self.cfg.detail:
            base = base * base.new_tensor(self.cfg.detail).view(1, -1, 1, 1)
        z_guess, base = (x.repeat_interleave(members, 0) for x in (z_guess, base))
        z = z_guess + self.cfg.residual_scale * residual
        rain = to_rain(base + decode_log_frames(self.autoencoder, z, size))
        return torch.where(rain >= THRESHOLD, rain, torch.zeros_like(rain))  # the radar's detection limit

    def ensemble(self, context: torch.Tensor, members: int, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """``members`` forecasts ``[members, T, H, W]`` mm/h of one context ``[1, C, H, W]`` mm/h, on its first
        guess."""
        return self.sample(context, self.first_guess(context), members, generator)


def inflate(residuals: torch.Tensor, members: int, factors: tuple[float, ...]) -> torch.Tensor:
    """Multiplicative spread inflation: each member's departure from its ensemble's mean times its lead's
    factor. ``[B * members, T z, h, w]`` (member-minor, T = ``len(factors)``) -> the same shape."""
    leads = len(factors)
    v = residuals.reshape(-1, members, leads, residuals.shape[1] // leads, *residuals.shape[2:])
    mean = v.mean(1, keepdim=True)
    f = torch.as_tensor(factors, dtype=v.dtype, device=v.device).reshape(1, 1, leads, 1, 1, 1)
    return (mean + f * (v - mean)).reshape(residuals.shape)


SPREAD_CANDIDATES = (1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0)
SPREAD_SCORES = ("crps", "reliability")


def best_per_lead(scores: np.ndarray, candidates: tuple[float, ...]) -> tuple[float, ...]:
    """Per lead, the candidate with the lowest score: ``scores [F, T]`` of the F ``candidates`` -> T factors."""
    return tuple(float(candidates[i]) for i in np.asarray(scores).argmin(0))


@torch.no_grad()
def fit_spread(model: LatentNowcaster, crops: RadarSamples, members: int = 6,
               generator: torch.Generator | None = None, candidates: tuple[float, ...] = SPREAD_CANDIDATES,
               margin: int = 0, score: str = "crps") -> tuple[float, ...]:
    """Per-lead inflation factors of the members' residuals about their mean, chosen among ``candidates`` to
    minimise the mean CRPS of held-out crops (``score="crps"``: a proper score, as ensemble calibration is
    usually fitted, Gneiting et al. 2005) or to make their rank histograms flattest (``"reliability"``: the
    reliability index, which rewards spread even where it costs accuracy). The members are drawn once per
    crop and inflated after the draw, so every candidate is scored on the same draws. Why inflate at all:
    the members cannot carry the small-scale error the autoencoder does not represent (in the latents their
    spread nearly matches the error of their mean), so on the rain they are too alike. (Matching spread to
    error on ``log1p`` rain instead, Fortin et al. 2014, asks for factors 1.8-2.6 on the reference run, which
    over-disperses the large scales: the missing variance is at scales the latents cannot spread.)

    Args:
        model: the nowcaster (its own ``cfg.spread`` is not applied).
        crops: held-out crops, e.g. the validation split (``inputs`` ``[C, H, W]``, ``targets`` ``[T, H, W]``
            mm/h).
        members: ensemble members per crop.
        generator: seeds the members.
        candidates: the factors tried.
        margin: pixels left out of the scores on every side, as the evaluation leaves them out (rain entering
            the crop from outside is in no member).
        score: ``"crps"`` or ``"reliability"``.

    Returns: T factors, one per lead.
    """
    if score not in SPREAD_SCORES:
        raise ValueError(f"score must be one of {SPREAD_SCORES}, got {score!r}")
    rng = np.random.default_rng(0)
    inner = slice(margin, crops.cfg.crop - margin)
    counts = np.zeros((len(candidates), model.cfg.leads, members + 1), dtype=np.int64)
    crps = np.zeros((len(candidates), model.cfg.leads))
    for i in range(len(crops)):
        item = crops[i]
        context, observed = item["inputs"][None].float(), item["targets"].numpy()[..., inner, inner]
        guess = model.first_guess(context)
        z_context, z_guess = (encode_frames(model.autoencoder, x) for x in (context, guess))
        residual = model.residuals(z_context, z_guess, members, generator, inflated=False)
        for k, f in enumerate(candidates):
            rain = model.decode(guess, z_guess, inflate(residual, members, (f,) * model.cfg.leads))
            rain = rain.numpy()[..., inner, inner]
            if score == "crps":
                crps[k] += crps_ensemble(rain, observed).mean(axis=(-2, -1))
            else:
                counts[k] += rank_counts(rain, observed, THRESHOLD, rng)
    return best_per_lead(crps if score == "crps" else reliability_index(counts), candidates)


def detail_weights(guessed: np.ndarray, observed: np.ndarray) -> tuple[float, ...]:
    """Per lead, the least-squares weight ``b`` of ``observed ~ b * guessed`` (the regression through 0),
    clipped to [0, 1]: ``[N, T, H, W]`` arrays of the first guess's and the observed frames'
    :func:`detail` -> T weights."""
    cross = np.einsum("nthw,nthw->t", guessed, observed)
    power = np.einsum("nthw,nthw->t", guessed, guessed)
    return tuple(float(b) for b in np.clip(np.divide(cross, power, out=np.ones_like(cross), where=power > 0), 0, 1))


@torch.no_grad()
def fit_detail(model: LatentNowcaster, crops: RadarSamples, margin: int = 0) -> tuple[float, ...]:
    """Per-lead weights of the first guess's :func:`detail` in the decoded forecast (``cfg.detail``): the
    regression of the observed frames' detail on the first guess's, on held-out crops (:func:`detail_weights`).
    The latents leave out the scales below the autoencoder's grid, so the members carry the first guess's
    small scales unchanged at every lead; in the observed future they decorrelate within the hour (the
    archive's scale-dependent lifetimes, the reason S-PROG damps its finest cascade levels). Weighted by
    their correlation, they fade as they lose their skill, as in the conditional mean.

    Args:
        model: the nowcaster.
        crops: held-out crops (``inputs`` ``[C, H, W]``, ``targets`` ``[T, H, W]`` mm/h).
        margin: pixels left out on every side, as the evaluation leaves them out.

    Returns: T weights in [0, 1], one per lead.
    """
    guessed, observed = [], []
    for i in range(len(crops)):
        item = crops[i]
        guess = model.first_guess(item["inputs"][None].float())
        inner = slice(margin, guess.shape[-1] - margin)
        for frames, out in ((guess, guessed), (item["targets"][None].float(), observed)):
            out.append(detail(model.autoencoder, frames)[0, :, inner, inner].numpy())
    return detail_weights(np.stack(guessed), np.stack(observed))


class LatentSamples(Dataset):
    """Training crops for the latent nowcaster: the autoencoder's mean latents of each crop's context, of
    the first guess from that context (:func:`first_guess`, with ``deterministic`` the model's frozen U-Net
    if it has one) and of the observed future (``{"context": [C z, h, w], "first_guess": [T z, h, w],
    "future": [T z, h, w]}``), computed once per crop and kept: encoding 40 frames costs more than a
    training step.

    With ``augment`` each crop also comes turned and reflected (:func:`weather.samples.dihedral`, item
    ``g * crops + i`` is copy g of crop i, so the first items are the crops as they are): rain fields have
    no preferred direction, and the archive's winds blow from every direction alike. The first guess of
    a turned context is taken as the turned first guess (Lucas-Kanade flow and semi-Lagrangian advection
    treat both grid axes alike; a U-Net's correction only approximately), so it is computed once per crop.
    """

    def __init__(self, samples: RadarSamples, autoencoder: KLAutoencoder, augment: bool = False,
                 deterministic: NowcastUNet | None = None) -> None:
        self.samples, self.autoencoder, self.deterministic = samples, autoencoder, deterministic
        self.copies = SQUARE_SYMMETRIES if augment else 1
        self._cache: dict[int, list[dict[str, torch.Tensor]]] = {}

    def __len__(self) -> int:
        return len(self.samples) * self.copies

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g, crop = divmod(i, len(self.samples))
        if crop not in self._cache:
            self._cache[crop] = self._encode(crop)
        return self._cache[crop][g]

    @torch.no_grad()
    def _encode(self, crop: int) -> list[dict[str, torch.Tensor]]:
        """The latents of every copy of one crop."""
        item = self.samples[crop]
        guess = first_guess(item["inputs"][None], self.samples.cfg.leads, self.deterministic)[0]
        frames = [x.float() for x in (item["inputs"], guess, item["targets"])]
        return [{key: encode_frames(self.autoencoder, dihedral(x, g)[None])[0]
                 for key, x in zip(("context", "first_guess", "future"), frames)} for g in range(self.copies)]
