"""KL-regularised convolutional autoencoder for latent diffusion (Rombach et al. 2022), 2-D or 3-D.

The encoder maps ``x [B, C, *S]`` to a diagonal Gaussian over latents ``[B, z, *S / 2^k]``; the decoder maps
latents back to the data's size. Training minimises reconstruction MSE + ``beta`` KL(q(z|x) || N(0, I)),
with a small beta so latents stay informative while their scale stays near 1 for the diffusion model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from generative.unet import PaddedConv, UNetConfig, normalisation


@dataclass
class AutoencoderConfig:
    dim: int = 2
    in_channels: int = 1
    latent_channels: int = 4
    channels: tuple[int, ...] = (32, 64)  # one downsampling by 2 between consecutive widths
    circular: tuple[bool, ...] = ()
    beta: float = 1e-4
    norm: str = "group"                   # "group" or "channel" (see generative.unet)


def _conv_stack(cfg: UNetConfig, c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(PaddedConv(cfg, c_in, c_out), normalisation(cfg, c_out), nn.SiLU())


class KLAutoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        conv = UNetConfig(dim=cfg.dim, circular=cfg.circular, norm=cfg.norm)
        widths = cfg.channels
        enc: list[nn.Module] = [_conv_stack(conv, cfg.in_channels, widths[0])]
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [PaddedConv(conv, a, b, stride=2), _conv_stack(conv, b, b)]
        enc.append(PaddedConv(conv, widths[-1], 2 * cfg.latent_channels))
        self.encoder = nn.Sequential(*enc)
        self.decoder_in = _conv_stack(conv, cfg.latent_channels, widths[-1])
        self.decoder_up = nn.ModuleList(_conv_stack(conv, b, a) for a, b in zip(widths[-2::-1], widths[:0:-1]))
        self.decoder_out = PaddedConv(conv, widths[0], cfg.in_channels)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """Reconstruction of spatial ``size`` (sizes need not be powers of two)."""
        h = self.decoder_in(z)
        for i, block in enumerate(self.decoder_up):
            scale = 2 ** (len(self.decoder_up) - 1 - i)
            target = tuple(-(-s // scale) for s in size)
            h = block(F.interpolate(h, size=target, mode="nearest"))
        return self.decoder_out(h)

    def forward(self, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction and the KL term (mean over the batch of the sum over latent elements)."""
        mean, logvar = self.encode(x)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean) if sample else mean
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()
        return self.decode(z, tuple(x.shape[2:])), kl

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        reconstruction, kl = self(x)
        return F.mse_loss(reconstruction, x) + self.cfg.beta * kl
