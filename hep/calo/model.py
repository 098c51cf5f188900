"""A CaloDiffusion-like conditional shower generator (Amram & Pedro 2023, arXiv:2308.03876), small enough
for a laptop CPU.

Voxel energies are divided by the incident energy, logit-transformed, ``u = ln(x' / (1 - x'))`` with
``x' = a + (1 - 2a) E_voxel / E_inc``, and standardised per voxel by the training set's mean and standard
deviation (one global standardisation put 4.2 logit units in each network unit: a zero-mean error of 0.28
then doubled the expected energy, exp((4.24 x 0.28)^2 / 2) = 2, and its clip let an outer voxel take the
core's range); samples are clipped to each voxel's training range.
A 3-D U-Net over (layer, alpha, radius), circular in alpha, predicts the noise on a cosine VP schedule; it
is conditioned by concatenating three maps: ln E_inc scaled to [-1, 1], and the layer and radial
coordinates (CaloDiffusion's geometry inputs, so one convolution knows where in the detector it is).
Generated voxels below half the smallest deposit the training data has in their layer are set to zero (a
readout threshold at the data's own quantum: GFlash deposits whole spots of 0.6-1.5 MeV, so less than half
of one rounds to no spot). The network predicts the noise (``epsilon``, the default), the velocity
``v`` or the clean sample (``prediction``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from datasets.showers import CaloGeometry, read_geometry, read_showers
from generative.objectives import denoising_loss
from generative.samplers import DDIMSampler, DDPMSampler, EDMSampler, Sampler, edm_sampler_for, vp_denoiser
from generative.schedules import VPSchedule
from generative.unet import UNet, UNetConfig
from hep.calo.energy import TotalEnergyModel
from training import TrainerConfig
from training.recipe import Built, Recipe



@dataclass
class CaloDiffusionConfig:
    channels: tuple[int, ...] = (16, 32, 64)  # U-Net width per level
    schedule: str = "cosine"           # noise schedule: cosine or linear
    timesteps: int = 400               # diffusion steps of the schedule
    logit_alpha: float = 1e-8          # below the smallest voxel fraction GFlash makes (~5e-7)
    prediction: str = field(default="epsilon", metadata={"choices": ("epsilon", "v_prediction", "sample")})
    #                                    what the network predicts
    energy_range_mev: tuple[float, float] = (1e3, 1e6)  # incident energies the conditioning spans (MeV)
    geometry: CaloGeometry = field(default_factory=CaloGeometry, metadata={"cli": False})  # the data's


class CaloDiffusion(nn.Module):
    """``forward(x_t [B, 1, L, A, R], t [B], energy [B, 1] MeV) -> predicted noise``, plus the voxel transform
    (fitted with :meth:`fit_transform`) and :meth:`generate`."""

    DEFAULT_SAMPLERS = ("ddim:50", "edm:18", "ddpm:400")

    def __init__(self, cfg: CaloDiffusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        g = cfg.geometry
        self.unet = UNet(UNetConfig(dim=3, channels=tuple(cfg.channels), cond_channels=3,
                                    circular=(False, True, False), groups=8))
        self.schedule = VPSchedule.named(cfg.schedule, cfg.timesteps)
        layer = torch.linspace(-1, 1, g.n_layers).view(-1, 1, 1).expand(g.shape)
        radius = torch.linspace(-1, 1, g.n_radial).view(1, 1, -1).expand(g.shape)
        self.register_buffer("coordinates", torch.stack([layer, radius]).contiguous(), persistent=False)
        self.register_buffer("shift", torch.zeros(g.n_voxels))    # per-voxel standardisation of the logits
        self.register_buffer("scale", torch.ones(g.n_voxels))
        self.register_buffer("bounds", torch.tensor([-10.0, 10.0]).repeat(g.n_voxels, 1))  # [V, 2]: training range
        self.register_buffer("threshold", torch.zeros(g.n_layers))  # half the smallest deposit per layer [MeV]
        self.total = TotalEnergyModel(cfg.energy_range_mev)  # the energy model (two-stage generation)

    def conditioning(self, energy: torch.Tensor) -> torch.Tensor:
        """``[B, 3, L, A, R]``: scaled ln E_inc, layer and radial coordinates."""
        lo, hi = (math.log(e) for e in self.cfg.energy_range_mev)
        e = (2 * (energy.reshape(-1).log() - lo) / (hi - lo) - 1).to(self.coordinates.dtype)
        maps = e.view(-1, 1, 1, 1, 1).expand(-1, 1, *self.cfg.geometry.shape)
        return torch.cat([maps, self.coordinates.expand(len(e), -1, -1, -1, -1)], dim=1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        return self.unet(x_t, t, self.conditioning(energy))

    def _logit(self, showers: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        a = self.cfg.logit_alpha
        x = a + (1 - 2 * a) * (showers / energy.reshape(-1, 1)).clamp(0, 1)
        return (x / (1 - x)).log()

    def fit_transform(self, showers: torch.Tensor, energy: torch.Tensor) -> None:
        """Standardise each voxel with the mean and standard deviation of its logit over a training set
        (a voxel the set never fills keeps scale 1), keep the range each spans (samples are clipped to it:
        a voxel holds at most what the data ever put there), and each layer's smallest non-zero deposit
        (half of it is the readout threshold: rounding to whole spots)."""
        u = self._logit(showers, energy)
        self.shift.copy_(u.mean(0))
        std = u.std(0)
        self.scale.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        self.bounds.copy_(torch.stack([u.amin(0), u.amax(0)], -1).sub(self.shift[:, None]).div(self.scale[:, None]))
        layers = showers.reshape(len(showers), self.cfg.geometry.n_layers, -1)
        smallest = torch.where(layers > 0, layers, torch.inf).amin(dim=(0, 2))
        self.threshold.copy_(torch.where(torch.isfinite(smallest), 0.5 * smallest, torch.zeros_like(smallest)))
        self.total.fit(showers.sum(1), energy)

    def renormalise(self, showers: torch.Tensor, energy: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Two-stage generation: keep the network's shower shape, take the total from the energy model."""
        return self.total.renormalise(showers, energy, generator)

    def encode(self, showers: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """MeV voxels ``[B, V]`` to network space ``[B, 1, L, A, R]``."""
        u = (self._logit(showers, energy) - self.shift) / self.scale
        return u.view(-1, 1, *self.cfg.geometry.shape)

    def decode(self, u: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """Network space back to MeV voxels ``[B, V]``, clipped to each voxel's training range and zeroed
        below its layer's threshold."""
        a = self.cfg.logit_alpha
        u = torch.maximum(torch.minimum(u.reshape(len(u), -1), self.bounds[:, 1]), self.bounds[:, 0])
        x = ((torch.sigmoid(u * self.scale + self.shift) - a) / (1 - 2 * a)).clamp(min=0)
        showers = x * energy.reshape(-1, 1)
        threshold = self.threshold.repeat_interleave(len(self.shift) // len(self.threshold))
        return torch.where(showers < threshold, torch.zeros_like(showers), showers)

    def sampler(self, name: str, steps: int) -> Sampler:
        """A sampler for this model's schedule: ``ddpm``, ``ddim`` (eta 0) or ``edm`` (Heun on the VP network;
        2 steps - 1 network calls), with ``steps`` steps. DDPM and DDIM clip their x0 estimates to the data's
        range: at the first steps of the cosine schedule alpha_t ~ 1e-4 amplifies the noise prediction's error
        ten-thousandfold."""
        clip, prediction = float(self.bounds.abs().max()), self.cfg.prediction
        samplers = {"ddpm": lambda: DDPMSampler(self.schedule, prediction, clip_sample=clip),
                    "ddim": lambda: DDIMSampler(self.schedule, prediction, eta=0.0, clip_sample=clip),
                    "edm": lambda: edm_sampler_for(self.schedule)}
        if name not in samplers:
            raise ValueError(f"sampler must be ddpm, ddim or edm, got {name!r}")
        chosen = samplers[name]()
        chosen.set_timesteps(steps)
        return chosen

    @torch.no_grad()
    def generate(self, energy: torch.Tensor, sampler: Sampler, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Showers ``[B, V]`` [MeV] for incident energies ``[B, 1]`` [MeV], drawn with ``sampler`` (from
        :meth:`sampler`, or any sampler on this model's schedule)."""
        self.eval()
        energy = energy.to(self.shift.device, self.shift.dtype)
        shape = (len(energy), 1, *self.cfg.geometry.shape)
        network = lambda x, t: self(x, t, energy)  # noqa: E731
        model = vp_denoiser(network, self.schedule, self.cfg.prediction) if isinstance(sampler, EDMSampler) \
            else network
        u = sampler.sample(model, shape, generator=generator, device=self.shift.device)
        return self.decode(u, energy)


class ShowerSet(Dataset):
    """``(u [1, L, A, R], energy [1])`` pairs of showers, in the model's network space."""

    def __init__(self, model: CaloDiffusion, energy: torch.Tensor, showers: torch.Tensor) -> None:
        self.energy = energy
        with torch.no_grad():
            self.u = model.encode(showers, energy)

    def __len__(self) -> int:
        return len(self.u)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.u[i], self.energy[i]


def training_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Denoising loss (of the configured prediction) with t uniform over the schedule."""
    u, energy = batch
    net: CaloDiffusion = getattr(model, "module", model)
    return denoising_loss(lambda x, t: model(x, t, energy), net.schedule, u, net.cfg.prediction), {}


@dataclass
class CaloRun:
    """A training run; defaults are the reference configuration of docs/hep.md."""

    data_dir: str = "runs/data/calo"   # folder with train.h5 (physml data generate calo)
    model: CaloDiffusionConfig = field(default_factory=CaloDiffusionConfig)
    max_showers: int | None = None     # train on the first showers only (None: all)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/calo", steps=2000, batch_size=32, lr=1e-3, schedule="cosine", lr_final=1e-5,
        warmup_steps=100, log_every=20, eval_every=0))


def build_model(run: CaloRun) -> CaloDiffusion:
    return CaloDiffusion(run.model)


def build(run: CaloRun) -> Built:
    """Fit the voxel transform and the energy model on ``train.h5`` (the checkpoint holds both with the
    network); the geometry is the file's."""
    path = Path(run.data_dir) / "train.h5"
    run.model = dataclasses.replace(run.model, geometry=read_geometry(path))
    model = build_model(run)
    energy, showers = (torch.from_numpy(a) for a in read_showers(path, run.model.geometry, run.max_showers))
    model.fit_transform(showers, energy)
    return Built(model, ShowerSet(model, energy, showers), None, None, training_loss)


RECIPE = Recipe("calo", "conditional diffusion shower generator on calorimeter showers", CaloRun, build, build_model)
