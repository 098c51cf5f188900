"""The deterministic nowcaster: the shared 2-D U-Net mapping the context to all leads at once, as a log-space
correction to persistence or to pysteps' extrapolation (trained in :mod:`weather.train`)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from generative.unet import UNet, UNetConfig
from weather.baselines import extrapolate
from weather.dgmr import to_rain


class NowcastUNet(nn.Module):
    """The deterministic baseline: context ``[B, C, H, W]`` mm/h -> leads ``[B, T, H, W]`` mm/h in one pass.

    It predicts a correction in log space to a base forecast, ``log1p(f_t) = log1p(b_t) + u_t``, floored at 0
    (dry) by :func:`weather.dgmr.to_rain`, with the U-Net's last layer zero-initialised: training starts from
    the base. The base is persistence (``b_t = x_last``) or pysteps' extrapolation of the context (the U-Net
    then reads the context and the extrapolation's 18 frames). Per-position channel norms (no statistics over
    the image) and five resolution levels (a receptive field of ~170 km, more than 90 minutes of advection at
    60 km/h) let a model trained on crops forecast a larger domain with the same interior.
    """

    def __init__(self, context: int = 4, leads: int = 18, channels: tuple[int, ...] = (32, 64, 128, 128, 128),
                 base: Literal["persistence", "extrapolation"] = "persistence") -> None:
        super().__init__()
        if base not in ("persistence", "extrapolation"):
            raise ValueError(f"base must be persistence or extrapolation, got {base!r}")
        self.leads, self.base = leads, base
        inputs = context + (leads if base == "extrapolation" else 0)
        self.net = UNet(UNetConfig(dim=2, in_channels=inputs, out_channels=leads, channels=tuple(channels),
                                   norm="channel"))
        last = self.net.head[-1].conv
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def log_forecast(self, inputs: torch.Tensor, extrapolation: torch.Tensor | None = None) -> torch.Tensor:
        """``log1p`` of the forecast ``[B, T, H, W]`` before the dry floor (may be negative).

        Args:
            inputs: context ``[B, C, H, W]`` mm/h.
            extrapolation: pysteps' extrapolation of it ``[B, T, H, W]`` mm/h, for ``base="extrapolation"``
                (computed here when not given; training crops carry it).
        """
        t = torch.zeros(inputs.shape[0], device=inputs.device)  # no diffusion time: a constant embedding
        x = torch.log1p(inputs)
        if self.base == "persistence":
            return x[:, -1:] + self.net(x, t)
        if extrapolation is None:
            extrapolation = extrapolate(inputs, self.leads)
        base = torch.log1p(extrapolation)
        return base + self.net(torch.cat([x, base], 1), t)

    def forward(self, inputs: torch.Tensor, extrapolation: torch.Tensor | None = None) -> torch.Tensor:
        return to_rain(self.log_forecast(inputs, extrapolation))
