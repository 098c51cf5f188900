"""U-Net for diffusion in 2-D or 3-D: residual blocks with a time (or noise-level) embedding, conditioning
by channel concatenation and by cross-attention, and per-axis circular padding (e.g. the azimuthal bins
of a cylindrical calorimeter). Sizes need not be powers of two: the decoder upsamples to each skip's size.

Normalisation is GroupNorm (statistics over the whole field: the usual choice for fixed-size data) or
``norm="channel"``, a LayerNorm over the channels of each position: then nothing depends on the field's
extent, and a network trained on crops computes the same interior on a larger domain (radar nowcasting).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from backbones.attention import CrossAttention


@dataclass
class UNetConfig:
    dim: int = 2                      # spatial dimensions, 2 or 3
    in_channels: int = 1
    out_channels: int = 1
    channels: tuple[int, ...] = (32, 64)   # width per resolution level (each level halves the size)
    cond_channels: int = 0            # conditioning maps concatenated to the input
    context_dim: int = 0              # width of cross-attention context tokens (0: no cross-attention)
    circular: tuple[bool, ...] = ()   # per spatial axis: circular instead of zero padding
    groups: int = 8
    norm: str = "group"               # "group" (GroupNorm, groups) or "channel" (per-position LayerNorm)


def timestep_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding ``[B, width]`` of (possibly fractional) timesteps or noise levels ``[B]``."""
    half = width // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class PaddedConv(nn.Module):
    """Convolution with 'same' padding, circular on the chosen axes and zero on the others."""

    def __init__(self, cfg: UNetConfig, c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = (nn.Conv2d if cfg.dim == 2 else nn.Conv3d)(c_in, c_out, kernel, stride=stride)
        self.circular = tuple(cfg.circular) + (False,) * (cfg.dim - len(cfg.circular))
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.circular)
        for axis, circular in enumerate(self.circular):  # F.pad lists the last axis first
            widths = [0, 0] * n
            widths[2 * (n - 1 - axis): 2 * (n - axis)] = [self.pad, self.pad]
            x = F.pad(x, widths, mode="circular" if circular else "constant")
        return self.conv(x)


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of each position of ``[B, C, *S]`` (no statistics across positions)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


def normalisation(cfg: UNetConfig, channels: int) -> nn.Module:
    if cfg.norm == "group":
        return nn.GroupNorm(min(cfg.groups, channels), channels)
    if cfg.norm == "channel":
        return ChannelNorm(channels)
    raise ValueError(f"norm must be 'group' or 'channel', got {cfg.norm!r}")


class ResBlock(nn.Module):
    def __init__(self, cfg: UNetConfig, c_in: int, c_out: int, t_width: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = normalisation(cfg, c_in), PaddedConv(cfg, c_in, c_out)
        self.norm2, self.conv2 = normalisation(cfg, c_out), PaddedConv(cfg, c_out, c_out)
        self.time = nn.Linear(t_width, c_out)
        self.skip = nn.Identity() if c_in == c_out else PaddedConv(cfg, c_in, c_out, kernel=1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb).view(temb.shape[0], -1, *([1] * (x.dim() - 2)))
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    """``forward(x [B, C, *S], t [B], cond [B, C_c, *S] | None, context [B, L, C_ctx] | None) -> [B, C_out, *S]``."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        if cfg.dim not in (2, 3):
            raise ValueError(f"UNet dim must be 2 or 3, got {cfg.dim}")
        self.cfg = cfg
        widths = cfg.channels
        t_width = 4 * widths[0]
        self.t_width = widths[0]
        self.time = nn.Sequential(nn.Linear(widths[0], t_width), nn.SiLU(), nn.Linear(t_width, t_width))
        self.stem = PaddedConv(cfg, cfg.in_channels + cfg.cond_channels, widths[0])
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c = widths[0]
        for i, w in enumerate(widths):
            self.down.append(ResBlock(cfg, c, w, t_width))
            c = w
            if i < len(widths) - 1:
                self.pool.append(PaddedConv(cfg, c, c, stride=2))
        self.mid = ResBlock(cfg, c, c, t_width)
        self.attn = CrossAttention(c, cfg.context_dim or None) if cfg.context_dim else None
        self.up = nn.ModuleList()
        for w in reversed(widths):
            self.up.append(ResBlock(cfg, c + w, w, t_width))
            c = w
        self.head = nn.Sequential(normalisation(cfg, c), nn.SiLU(),
                                  PaddedConv(cfg, c, cfg.out_channels))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        if (cond is None) != (self.cfg.cond_channels == 0):
            raise ValueError(f"this UNet expects {self.cfg.cond_channels} conditioning channels")
        temb = self.time(timestep_embedding(t, self.t_width).to(x.dtype))
        h = self.stem(x if cond is None else torch.cat([x, cond], dim=1))
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, temb)
            skips.append(h)
            if i < len(self.pool):
                h = self.pool[i](h)
        h = self.mid(h, temb)
        if self.attn is not None:
            if context is None:
                raise ValueError("this UNet has cross-attention and needs a context")
            tokens = self.attn(h.flatten(2).transpose(1, 2), context)
            h = tokens.transpose(1, 2).reshape(h.shape)
        for block in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), temb)
        return self.head(h)
