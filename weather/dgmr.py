"""DGMR (Ravuri et al. 2021, "Skilful precipitation nowcasting using deep generative models of radar").

A conditional GAN: from ``context`` radar frames it samples ``leads`` future frames; different latent draws
give an ensemble. Widths are multiples of ``base`` (the paper's model is ``base = 24``); every input size
divisible by 32 works, and the latent grid follows it (``H/32 x W/32``), so a model trained on crops
forecasts whole images.

Generator (shapes for inputs ``[B, 4, H, W]``):
- context conditioning stack: each frame space-to-depth (``[4, H/2, W/2]``), four D-blocks of widths
  ``2b, 4b, 8b, 16b`` give features at ``H/4 .. H/32``; per scale the frames are stacked on channels and a 3x3
  convolution gives the ConvGRU initial states (``4b, 8b, 16b, 32b`` channels);
- latent conditioning stack: ``z ~ N(0, 1)`` ``[8, H/32, W/32]``, L-blocks to ``b, 2b, 8b``, spatial attention,
  an L-block to ``32b``;
- sampler: for each lead, ConvGRUs from the coarsest scale to the finest (the coarsest reads the latent, the
  others the up-sampling G-block output of the scale below), then ReLU-1x1 conv to 4 channels and
  depth-to-space to ``[1, H, W]``. Each finer scale passes on about a tenth of the latent's effect on the
  scale below (measured at initialisation, ``base = 4``: the features' spread over latent draws is 0.5 of
  their magnitude at the coarsest ConvGRU's state, 2e-4 of it at the output layer's input), so with
  ``latent_every_scale`` every finer ConvGRU also reads the latent, projected by a 1x1 convolution and
  repeated onto its grid. The sampler has no batch norm: it runs the same blocks for every lead, and
  one set of running statistics for all 18 leads (dominated by the late ones) would put evaluation-mode
  forecasts of the first leads off their training distribution.
On pysteps' extrapolation (``corrects = "extrapolation"``, the default; ``"nothing"`` is the paper's model) the
generator outputs a ``log1p`` correction to the extrapolation of its context, as NowcastNet (Zhang et al. 2023)
conditions its generative network on an evolution network's forecast and as this suite's U-Net and latent
nowcaster do: at each lead the ConvGRU of each scale also reads that lead's extrapolated frame, average-pooled
to its resolution, the output convolution reads it at ``H/2`` (space-to-depth), and that convolution is
zero-initialised (without spectral normalisation, which a zero weight would divide by 0): an untrained
generator forecasts the extrapolation exactly, and the latent draws learn its errors (growth, decay,
small-scale loss) instead of advection, which a CPU-sized network trained for hours does not learn.
Discriminator: a spatial one (8 random lead frames, 2x average pooled, space-to-depth, D-blocks ``2b .. 32b,
32b``) and a temporal one (a random crop of the whole sequence, space-to-depth, two 3-D D-blocks ``2b, 4b``,
then 2-D D-blocks ``8b .. 32b, 32b``); each sums its scores over frames.
Rain rates enter every network as ``log1p(mm/h)`` and leave the generator through :func:`to_rain`: the
output is linear in ``log1p(mm/h)`` (as the paper's linear output layer), floored at 0 (dry) and capped at
1000 mm/h. An untrained generator's outputs are small, so it starts near dry, as most radar pixels are; a
``softplus`` floor would start it at ``expm1(softplus(0)) = 1`` mm/h everywhere, which the discriminators
tell from real rain at once (their hinge loss reaches 0 and their gradient dies).
Spectral normalisation on every convolution; losses in :mod:`weather.train`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from generative.gan import BatchCentring, DBlock, GBlock, LBlock, SelfAttention2d, sn_conv
from weather.baselines import extrapolate

MAX_RAIN = 1000.0  # mm/h, far above any observed rain rate


def to_rain(log_rain: torch.Tensor) -> torch.Tensor:
    """Network output ``log1p(mm/h)`` -> rain rate in mm/h, 0 (dry) below 0 and at most ``MAX_RAIN``."""
    return torch.expm1(log_rain.clamp(0.0, float(np.log1p(MAX_RAIN))))


@dataclass
class DGMRConfig:
    context: int = 4
    leads: int = 18
    base: int = 24                 # width unit; 24 is the paper's model, 4 trains on a laptop CPU
    latent_channels: int = 8
    spatial_frames: int = 8        # lead frames the spatial discriminator scores
    temporal_crop: int = 128       # crop (pixels) the temporal discriminator scores
    samples: int = 6               # generator samples per input for the grid-cell regulariser
    reg_weight: float = 20.0       # lambda of the grid-cell regulariser
    reg_floor: float = 1.0         # smallest cell weight of the regulariser (0: the pseudocode's clip(y, 0, 24))
    regulariser: Literal["mean", "crps"] = "mean"  # grid-cell kernel: |mean of samples - y| or their CRPS (log1p)
    corrects: Literal["nothing", "extrapolation"] = "extrapolation"  # the forecast the generator corrects
    latent_every_scale: bool = False  # every ConvGRU reads the latent (the paper: only the coarsest)


class ConvGRU(nn.Module):
    """Convolutional GRU cell: ``h' = u * h + (1 - u) * relu(conv([x, r * h]))``."""

    def __init__(self, c_in: int, c_hidden: int) -> None:
        super().__init__()
        self.gates = sn_conv(c_in + c_hidden, 2 * c_hidden)
        self.candidate = sn_conv(c_in + c_hidden, c_hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        c = F.relu(self.candidate(torch.cat([x, reset * h], dim=1)))
        return update * h + (1.0 - update) * c


class ContextStack(nn.Module):
    def __init__(self, cfg: DGMRConfig) -> None:
        super().__init__()
        widths = [cfg.base * 2 ** k for k in range(1, 5)]
        self.blocks = nn.ModuleList(DBlock(c_in, c_out, first_relu=i > 0)
                                    for i, (c_in, c_out) in enumerate(zip([4] + widths, widths)))
        self.mix = nn.ModuleList(sn_conv(cfg.context * w, 2 * w) for w in widths)

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """``[B, T, H, W]`` (log rain) -> initial states ``[B, 4b, H/4, W/4] .. [B, 32b, H/32, W/32]``."""
        b, t, h, w = frames.shape
        x = F.pixel_unshuffle(frames.reshape(b * t, 1, h, w), 2)
        states = []
        for block, mix in zip(self.blocks, self.mix):
            x = block(x)
            stacked = x.reshape(b, t * x.shape[1], *x.shape[2:])
            states.append(F.relu(mix(stacked)))
        return states


class LatentStack(nn.Module):
    def __init__(self, cfg: DGMRConfig) -> None:
        super().__init__()
        b = cfg.base
        self.cfg = cfg
        self.net = nn.Sequential(sn_conv(cfg.latent_channels, cfg.latent_channels), LBlock(cfg.latent_channels, b),
                                 LBlock(b, 2 * b), LBlock(2 * b, 8 * b), SelfAttention2d(8 * b),
                                 LBlock(8 * b, 32 * b))

    def forward(self, batch: int, height: int, width: int, device: torch.device,
                generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(batch, self.cfg.latent_channels, height // 32, width // 32, device=device,
                        generator=generator)
        return self.net(z)


class Sampler(nn.Module):
    def __init__(self, cfg: DGMRConfig) -> None:
        super().__init__()
        hidden = [cfg.base * 2 ** (k + 1) for k in range(1, 5)][::-1]   # 32b, 16b, 8b, 4b: coarse to fine
        self.reads_base = cfg.corrects == "extrapolation"
        extra = int(self.reads_base)                                    # the pooled extrapolated frame
        inputs = [32 * cfg.base] + hidden[1:]
        # the latent projected (1x1) to half a finer scale's width and repeated onto its grid
        self.latent_maps = nn.ModuleList(sn_conv(32 * cfg.base, h // 2, 1) for h in hidden[1:]) \
            if cfg.latent_every_scale else None
        reads = [0] + [h // 2 for h in hidden[1:]] if cfg.latent_every_scale else [0] * len(hidden)
        self.grus = nn.ModuleList(ConvGRU(i + extra + r, h) for i, h, r in zip(inputs, hidden, reads))
        self.heads = nn.ModuleList(nn.Sequential(sn_conv(h, h, 1), GBlock(h, h, batch_norm=False),
                                                 GBlock(h, h // 2, up=True, batch_norm=False)) for h in hidden)
        if self.reads_base:
            self.out = nn.Conv2d(hidden[-1] // 2 + 4, 4, 1)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        else:
            self.out = sn_conv(hidden[-1] // 2, 4, 1)

    def forward(self, latent: torch.Tensor, states: list[torch.Tensor], leads: int,
                base: torch.Tensor | None = None) -> torch.Tensor:
        """Latent ``[B, 32b, H/32, W/32]`` and initial states (fine to coarse) -> ``[B, leads, H, W]``
        (pre-activation; with ``corrects="extrapolation"`` the correction to ``base``, the extrapolation's
        ``log1p`` ``[B, leads, H, W]``)."""
        hs = states[::-1]
        latents = [] if self.latent_maps is None else [
            F.interpolate(project(latent), scale_factor=2 ** k, mode="nearest")
            for k, project in enumerate(self.latent_maps, start=1)]
        frames = []
        for t in range(leads):
            x = latent
            for k, (gru, head) in enumerate(zip(self.grus, self.heads)):
                if 0 < k <= len(latents):
                    x = torch.cat([x, latents[k - 1]], dim=1)
                if self.reads_base:
                    x = torch.cat([x, F.avg_pool2d(base[:, t:t + 1], 2 ** (5 - k))], dim=1)
                hs[k] = gru(x, hs[k])
                x = head(hs[k])
            x = F.relu(x)
            if self.reads_base:
                x = torch.cat([x, F.pixel_unshuffle(base[:, t:t + 1], 2)], dim=1)
            frames.append(F.pixel_shuffle(self.out(x), 2))
        return torch.cat(frames, dim=1)


class Generator(nn.Module):
    def __init__(self, cfg: DGMRConfig) -> None:
        super().__init__()
        if cfg.corrects not in ("nothing", "extrapolation"):
            raise ValueError(f"corrects must be nothing or extrapolation, got {cfg.corrects!r}")
        self.cfg = cfg
        self.context_stack, self.latent_stack, self.sampler = ContextStack(cfg), LatentStack(cfg), Sampler(cfg)

    def forward(self, inputs: torch.Tensor, generator: torch.Generator | None = None,
                extrapolation: torch.Tensor | None = None) -> torch.Tensor:
        """Context ``[B, context, H, W]`` mm/h -> one sample of ``[B, leads, H, W]`` mm/h (H, W divisible by 32).

        Args:
            inputs: the context frames, mm/h.
            generator: draws the latent.
            extrapolation: pysteps' extrapolation of ``inputs`` ``[B, leads, H, W]`` mm/h, for ``corrects =
                "extrapolation"`` (computed here when not given; training crops carry it).
        """
        b, t, h, w = inputs.shape
        if t != self.cfg.context or h % 32 or w % 32:
            raise ValueError(f"DGMR takes [B, {self.cfg.context}, H, W] with H, W divisible by 32, got "
                             f"{tuple(inputs.shape)}")
        states = self.context_stack(torch.log1p(inputs))
        latent = self.latent_stack(b, h, w, inputs.device, generator)
        if self.cfg.corrects == "nothing":
            return to_rain(self.sampler(latent, states, self.cfg.leads))
        if extrapolation is None:
            extrapolation = extrapolate(inputs, self.cfg.leads)
        base = torch.log1p(extrapolation)
        return to_rain(base + self.sampler(latent, states, self.cfg.leads, base))

    def ensemble(self, context: torch.Tensor, members: int, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """``members`` samples ``[members, leads, H, W]`` mm/h for one context ``[1, context, H, W]`` mm/h (the
        extrapolation computed once)."""
        base = extrapolate(context, self.cfg.leads) if self.cfg.corrects == "extrapolation" else None
        return self(context.expand(members, -1, -1, -1), generator,
                    None if base is None else base.expand(members, -1, -1, -1))


def _space_to_depth_frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, H, W] -> [B * T, 4, H/2, W/2]``."""
    b, t, h, w = x.shape
    return F.pixel_unshuffle(x.reshape(b * t, 1, h, w), 2)


class _Head(nn.Module):
    """D-block features -> ReLU, sum over space, batch centring (no scaling: see
    :class:`generative.gan.BatchCentring`), spectrally normalised linear score."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = BatchCentring(channels)
        self.linear = spectral_norm(nn.Linear(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.bn(F.relu(x).sum(dim=(-2, -1))))


def _d_blocks(widths: list[int], c_in: int, first_relu: bool) -> nn.Sequential:
    blocks = [DBlock(i, o, down=k < len(widths) - 1, first_relu=first_relu or k > 0)
              for k, (i, o) in enumerate(zip([c_in] + widths, widths))]
    return nn.Sequential(*blocks)


class SpatialDiscriminator(nn.Module):
    def __init__(self, cfg: DGMRConfig) -> None:
        super().__init__()
        b = cfg.base
        self.frames = cfg.spatial_frames
        self.blocks = _d_blocks([2 * b, 4 * b, 8 * b, 16 * b, 32 * b, 32 * b], 4, first_relu=False)
        self.head = _Head(32 * b)

    def forward(self, leads: torch.Tensor) -> torch.Tensor:
        """``[B, T, H, W]`` log rain -> ``[B]``: scores of ``spatial_frames`` random frames (the same for the
        whole batch), summed."""
        b, t = leads.shape[:2]
        pick = torch.randperm(t, device=leads.device)[:self.frames]
        x = F.avg_pool2d(leads[:, pick], 2)
        scores = self.head(self.blocks(_space_to_depth_frames(x)))
        return scores.reshape(b, -1).sum(dim=1)


class TemporalDiscriminator(nn.Module):
    def __init__(self, cfg: DGMRConfig) -> None:
        super().__init__()
        b = cfg.base
        self.crop = cfg.temporal_crop
        self.blocks3d = nn.Sequential(DBlock(4, 2 * b, dims=3, first_relu=False), DBlock(2 * b, 4 * b, dims=3))
        self.blocks2d = _d_blocks([8 * b, 16 * b, 32 * b, 32 * b], 4 * b, first_relu=True)
        self.head = _Head(32 * b)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """``[B, T, H, W]`` log rain (context and leads) -> ``[B]``: one random crop (the same for the batch)."""
        b, t, h, w = sequence.shape
        c = min(self.crop, h, w)
        y0, x0 = (int(torch.randint(0, n - c + 1, ())) for n in (h, w))
        x = sequence[:, :, y0:y0 + c, x0:x0 + c]
        x = F.pixel_unshuffle(x, 2).reshape(b, t, 4, c // 2, c // 2).transpose(1, 2)   # [B, 4, T, H/2, W/2]
        x = self.blocks3d(x)                                                          # [B, 4b, T', h, w]
        x = x.transpose(1, 2).reshape(-1, *x.shape[1:2], *x.shape[3:])                  # [B * T', 4b, h, w]
        return self.head(self.blocks2d(x)).reshape(b, -1).sum(dim=1)


class Discriminator(nn.Module):
    def __init__(self, cfg: DGMRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.spatial, self.temporal = SpatialDiscriminator(cfg), TemporalDiscriminator(cfg)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """Context and leads ``[B, context + leads, H, W]`` mm/h -> scores ``[B, 2]`` (spatial, temporal)."""
        x = torch.log1p(sequence)
        return torch.stack([self.spatial(x[:, self.cfg.context:]), self.temporal(x)], dim=1)


class DGMR(nn.Module):
    """Generator and discriminator in one module (one checkpoint; the adversarial trainer updates each)."""

    def __init__(self, cfg: DGMRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.generator, self.discriminator = Generator(cfg), Discriminator(cfg)
