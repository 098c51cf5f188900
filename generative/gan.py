"""GAN parts: spectrally normalised convolutions, BigGAN-style residual blocks, self-attention, hinge losses.

Blocks work in 2-D or 3-D (``dims``); shapes are ``[B, C, H, W]`` or ``[B, C, T, H, W]``.

- ``DBlock``: discriminator/encoder block, ReLU-conv-ReLU-conv then 2x average pooling (axes of length 1
  stay), with a 1x1 (pooled) shortcut; the first ReLU can be dropped for a block that sees raw input (BigGAN, DGMR).
- ``GBlock``: generator block, BN-ReLU-(2x nearest upsampling)-conv-BN-ReLU-conv with a 1x1 shortcut; the
  batch norms can be left out (a recurrent generator that runs one block for every lead time would otherwise
  keep one set of running statistics for all leads, dominated by the late ones).
- ``LBlock``: DGMR's latent block, which widens a stack by concatenating new channels to the input.
- ``SelfAttention2d``: SAGAN attention over pixels with a learned gate that starts closed.
- ``BatchCentring``: batch norm that only subtracts the mean (Sonnet's ``BatchNorm(calc_sigma=False)``, as in
  DGMR's discriminator heads). Dividing by the batch's standard deviation as well would undo the spectral
  normalisation: on a batch of real and generated samples any feature that separates them, however weakly,
  becomes +-1, the hinge loss reaches 0 within steps and the discriminator's gradient dies.

Spectral normalisation (Miyato et al. 2018) bounds each layer's Lipschitz constant, which keeps the
discriminator's gradients informative; :func:`sn_conv` applies it through torch's parametrisation.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv(c_in: int, c_out: int, kernel: int = 3, dims: int = 2, sn: bool = True) -> nn.Module:
    """A 'same'-padded convolution, spectrally normalised unless ``sn=False``."""
    conv = (nn.Conv2d if dims == 2 else nn.Conv3d)(c_in, c_out, kernel, padding=kernel // 2)
    return spectral_norm(conv) if sn else conv


def _pool(x: torch.Tensor) -> torch.Tensor:
    """2x average pooling of every spatial (or time) axis longer than 1 (small crops reach 1 pixel early)."""
    kernel = tuple(2 if n > 1 else 1 for n in x.shape[2:])
    return F.avg_pool2d(x, kernel) if x.dim() == 4 else F.avg_pool3d(x, kernel)


class DBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, dims: int = 2, down: bool = True, first_relu: bool = True,
                 sn: bool = True) -> None:
        super().__init__()
        self.down, self.first_relu = down, first_relu
        self.conv1, self.conv2 = sn_conv(c_in, c_out, 3, dims, sn), sn_conv(c_out, c_out, 3, dims, sn)
        self.skip = sn_conv(c_in, c_out, 1, dims, sn) if (c_in != c_out or down) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(x) if self.first_relu else x)
        h = self.conv2(F.relu(h))
        skip = self.skip(x)
        return (_pool(h) + _pool(skip)) if self.down else h + skip


class GBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, up: bool = False, sn: bool = True, batch_norm: bool = True) -> None:
        super().__init__()
        self.up = up
        self.bn1 = nn.BatchNorm2d(c_in) if batch_norm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.conv1, self.conv2 = sn_conv(c_in, c_out, 3, 2, sn), sn_conv(c_out, c_out, 3, 2, sn)
        self.skip = sn_conv(c_in, c_out, 1, 2, sn) if (c_in != c_out or up) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x))
        if self.up:
            h, x = F.interpolate(h, scale_factor=2.0), F.interpolate(x, scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.skip(x)


class LBlock(nn.Module):
    """``[B, c_in, H, W] -> [B, c_out, H, W]``: a ReLU-conv-ReLU-conv residual on a shortcut that keeps the input
    and appends ``c_out - c_in`` new channels (a 1x1 projection if the block does not widen)."""

    def __init__(self, c_in: int, c_out: int, sn: bool = True) -> None:
        super().__init__()
        self.widens = c_out > c_in
        self.conv1, self.conv2 = sn_conv(c_in, c_out, 3, 2, sn), sn_conv(c_out, c_out, 3, 2, sn)
        self.shortcut = sn_conv(c_in, c_out - c_in if self.widens else c_out, 1, 2, sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        return h + (torch.cat([x, self.shortcut(x)], dim=1) if self.widens else self.shortcut(x))


class SelfAttention2d(nn.Module):
    """``x + gamma * attention(x)`` over all pixels (SAGAN); ``gamma`` starts at 0."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.query, self.key = nn.Conv2d(channels, inner, 1), nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)     # [B, HW, c']
        k = self.key(x).flatten(2).transpose(1, 2)       # [B, HW, c']
        v = self.value(x).flatten(2).transpose(1, 2)     # [B, HW, C]
        out = F.scaled_dot_product_attention(q, k, v)    # [B, HW, C]
        return x + self.gamma * out.transpose(1, 2).reshape(b, c, h, w)


class BatchCentring(nn.Module):
    """``x - mean_batch(x)`` for ``[B, C]`` in training (a running mean is kept for evaluation); no scaling."""

    def __init__(self, channels: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x - self.running_mean.to(x.dtype)
        mean = x.mean(dim=0)
        with torch.no_grad():
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
        return x - mean


def hinge_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))`` (Lim and Ye 2017)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    """``-mean(D(fake))``."""
    return -fake.mean()
