"""A two-stage flow-matching shower generator over the calorimeter's layers (CaloDREAM-like: Favaro et al.
2024, arXiv:2405.09629), on the spot representation of ``hep/calo/spots.py`` and the shared transformer.

Per layer the data are the spot energy q [MeV] and the spot counts of the rings. Stage 1 (energies) models,
per layer, ``[ln q, ln(1 + n + u)]`` with n the layer's spot count and u ~ U[0, 1) drawn afresh each time
(dequantisation: ``floor(expm1)`` returns n); q of an empty layer is interpolated from its neighbours
(it carries no energy). Stage 2 (shapes) models the ring fractions ``n_r / n`` of every layer with spots,
given stage 1's features of all layers. Features are standardised per layer and feature on the training
set. Each stage is a velocity field on its own :class:`LayerTransformer` (one token per layer, blocks of
``backbones/transformer.py``), both trained at once by conditional flow matching (``generative/
flow_matching.py``). Sampling runs stage 1's ODE, then stage 2's given its output; ring counts follow by
largest-remainder rounding, the azimuthal split is GFlash's exact multinomial, and voxel energy = count x q.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from backbones.transformer import Block, TransformerConfig
from datasets.showers import CaloGeometry, read_geometry, read_showers
from generative.flow_matching import FlowSampler, straight_path, weighted_mse
from generative.unet import timestep_embedding
from hep.calo import metrics
from hep.calo.energy import TotalEnergyModel
from hep.calo.spots import fill_empty_layers, ring_counts_from_fractions, split_azimuth, spot_counts
from training import TrainerConfig
from training.recipe import Built, Recipe

CHUNK = 2000  # showers turned into spot features at once (float64 voxels: ~100 MB)


@dataclass
class CaloFlowConfig:
    dim: int = 128                     # transformer width (both stages)
    depth: int = 4                     # transformer blocks per stage
    heads: int = 4                     # attention heads
    mlp_dim: int = 256                 # feed-forward width
    patch: int = 3                     # consecutive layers per token (must divide the number of layers)
    times: str = field(default="uniform", metadata={"choices": ("uniform", "logit_normal")})  # training t law
    energy_range_mev: tuple[float, float] = (1e3, 1e6)  # incident energies the conditioning spans (MeV)
    geometry: CaloGeometry = field(default_factory=CaloGeometry, metadata={"cli": False})  # the data's


class LayerTransformer(nn.Module):
    """A velocity field over a shower's layers: ``forward(x [B, L, F], t [B], energy [B], context [B, L, K])
    -> [B, L, F]``; one token per ``cfg.patch`` consecutive layers (their features and context, plus a
    learned position embedding), and the condition (flow time and scaled ln E_inc) added to the tokens
    before every block.

    Args:
        features: F, the modelled features per layer.
        context: K, clean features per layer it is conditioned on (0: none).
        layers: L.
        cfg: widths and depth.
    """

    def __init__(self, features: int, context: int, layers: int, cfg: CaloFlowConfig) -> None:
        super().__init__()
        if layers % cfg.patch:
            raise ValueError(f"patch {cfg.patch} does not divide the {layers} layers")
        d, self.patch = cfg.dim, cfg.patch
        self.embed = nn.Linear((features + context) * cfg.patch, d)
        self.position = nn.Parameter(torch.zeros(1, layers // cfg.patch, d))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.condition = nn.Sequential(nn.Linear(d + 1, d), nn.SiLU(), nn.Linear(d, d))
        blocks = TransformerConfig(dim=d, heads=cfg.heads, mlp_dim=cfg.mlp_dim, depth=cfg.depth, dropout=0.0)
        self.blocks = nn.ModuleList(Block(blocks) for _ in range(cfg.depth))
        self.inject = nn.ModuleList(nn.Linear(d, d) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, features * cfg.patch)

    def forward(self, x: torch.Tensor, t: torch.Tensor, energy: torch.Tensor,
                context: torch.Tensor | None = None) -> torch.Tensor:
        c = self.condition(torch.cat([timestep_embedding(1000 * t, self.position.shape[-1]).to(x.dtype),
                                      energy[:, None]], dim=-1))
        tokens = (x if context is None else torch.cat([x, context], dim=-1)).flatten(1).unflatten(1, (
            self.position.shape[1], -1))                                 # [B, L / patch, patch (F + K)]
        h = self.embed(tokens) + self.position
        for block, inject in zip(self.blocks, self.inject):
            h = block(h + inject(c)[:, None])
        return self.out(self.norm(h)).reshape(x.shape)


def energy_features(log_q: torch.Tensor, n: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Stage 1's features ``[..., L, 2]``: ``ln q`` and ``ln(1 + n + u)``, ``u`` in [0, 1) (dequantisation)."""
    return torch.stack([log_q, torch.log1p(n.to(u.dtype) + u)], -1)


@dataclass(frozen=True)
class SpotFeatures:
    """Unstandardised spot features of showers: ``log_q [N, L]`` (empty layers interpolated), layer spot
    counts ``n [N, L]`` and ring fractions ``fractions [N, L, R]`` (0 in empty layers)."""

    log_q: np.ndarray
    n: np.ndarray
    fractions: np.ndarray

    @classmethod
    def of(cls, showers: np.ndarray, geometry: CaloGeometry) -> "SpotFeatures":
        """The features of spot-quantised showers ``[N, V]`` [MeV], ``CHUNK`` showers at a time."""
        parts = []
        for start in range(0, len(showers), CHUNK):
            q, counts = spot_counts(showers[start:start + CHUNK], geometry)
            rings = counts.sum(axis=2)                                   # [n, L, R]
            n = rings.sum(-1)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_q = fill_empty_layers(np.log(q))
            parts.append((log_q.astype(np.float32), n, (rings / np.maximum(n, 1)[..., None]).astype(np.float32)))
        return cls(*(np.concatenate(p) for p in zip(*parts)))


class CaloFlow(nn.Module):
    """The two stages and their feature standardisation; :meth:`generate` draws showers.

    ``forward(first_t, t1, second_t, t2, energy, first) -> (v1, v2)``: both stages' velocities in one call
    (one DDP forward per step): stage 1 at ``(first_t [B, L, 2], t1 [B])``, stage 2 at
    ``(second_t [B, L, R], t2 [B])`` given the clean standardised stage-1 features ``first [B, L, 2]``;
    ``energy [B]`` is the scaled ln E_inc (:meth:`energy_code`).
    """

    DEFAULT_SAMPLERS = ("heun:16", "heun:8", "euler:32")

    def __init__(self, cfg: CaloFlowConfig) -> None:
        super().__init__()
        self.cfg = cfg
        g = cfg.geometry
        self.energies = LayerTransformer(2, 0, g.n_layers, cfg)
        self.shapes = LayerTransformer(g.n_radial, 2, g.n_layers, cfg)
        for name, width in (("first", 2), ("second", g.n_radial)):
            self.register_buffer(f"{name}_mean", torch.zeros(g.n_layers, width))
            self.register_buffer(f"{name}_std", torch.ones(g.n_layers, width))
        self.register_buffer("first_bounds", torch.tensor([-10.0, 10.0]).repeat(g.n_layers, 2, 1))  # [L, 2, lo/hi]
        self.total = TotalEnergyModel(cfg.energy_range_mev)  # the energy model of E_dep / E_inc

    def forward(self, first_t: torch.Tensor, t1: torch.Tensor, second_t: torch.Tensor, t2: torch.Tensor,
                energy: torch.Tensor, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.energies(first_t, t1, energy), self.shapes(second_t, t2, energy, first)

    def energy_code(self, energy: torch.Tensor) -> torch.Tensor:
        """Incident energies ``[B, 1]`` [MeV] to ln E scaled to [-1, 1] over the configured range, ``[B]``."""
        lo, hi = (math.log(e) for e in self.cfg.energy_range_mev)
        return (2 * (energy.reshape(-1).log() - lo) / (hi - lo) - 1).to(self.first_mean.dtype)

    def fit_transform(self, features: SpotFeatures, u: torch.Tensor, deposited: torch.Tensor,
                      energy: torch.Tensor) -> None:
        """Per-layer, per-feature mean and standard deviation of both stages' features (stage 2 over layers
        with spots), stage 1's range in standardised units (samples are clipped to it; ``u [N, L]`` is the
        dequantisation noise), and the energy model of the deposited totals ``[N]`` at incident energies
        ``[N, 1]`` [MeV]."""
        self.total.fit(deposited, energy)
        first = energy_features(torch.from_numpy(features.log_q), torch.from_numpy(features.n), u)
        self.first_mean.copy_(first.mean(0))
        self.first_std.copy_(first.std(0).clamp(min=1e-6))
        z = (first - self.first_mean) / self.first_std
        self.first_bounds.copy_(torch.stack([z.amin(0), z.amax(0)], -1))
        fractions, mask = torch.from_numpy(features.fractions), torch.from_numpy(features.n > 0)[..., None]
        count = mask.sum(0).clamp(min=1)
        mean = (fractions * mask).sum(0) / count
        std = (((fractions - mean) ** 2 * mask).sum(0) / count).sqrt()
        self.second_mean.copy_(mean)
        self.second_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def renormalise(self, showers: torch.Tensor, energy: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Showers ``[B, V]`` scaled to a total from the energy model: every spot energy times one factor, so
        they stay spot-quantised."""
        return self.total.renormalise(showers, energy, generator)

    def standardise(self, first: torch.Tensor, fractions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (first - self.first_mean) / self.first_std, (fractions - self.second_mean) / self.second_std

    def sampler(self, name: str, steps: int) -> FlowSampler:
        """An ODE sampler: ``euler`` (``steps`` network calls per stage) or ``heun`` (2 x ``steps``)."""
        if name not in ("euler", "heun"):
            raise ValueError(f"sampler must be euler or heun, got {name!r}")
        return FlowSampler(name, steps)

    @torch.no_grad()
    def generate(self, energy: torch.Tensor, sampler: FlowSampler, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Showers ``[B, V]`` [MeV] for incident energies ``[B, 1]`` [MeV]."""
        self.eval()
        g = self.cfg.geometry
        energy = energy.to(self.first_mean.device, self.first_mean.dtype)
        code = self.energy_code(energy)
        b, device = len(code), self.first_mean.device
        first = sampler.sample(lambda x, t: self.energies(x, t, code), (b, g.n_layers, 2), generator, device=device)
        first = torch.maximum(torch.minimum(first, self.first_bounds[..., 1]), self.first_bounds[..., 0])
        second = sampler.sample(lambda x, t: self.shapes(x, t, code, first), (b, g.n_layers, g.n_radial),
                                generator, device=device)
        draw = torch.randint(2 ** 62, (1,), generator=generator, device=generator.device if generator else "cpu")
        return self.decode(first, second, np.random.default_rng(int(draw)))

    def decode(self, first: torch.Tensor, second: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Showers ``[B, V]`` [MeV] from standardised features of both stages (``[B, L, 2]``, ``[B, L, R]``):
        layer spot counts ``floor(expm1)``, ring counts by largest remainder, the azimuthal split drawn from
        ``rng``, voxel energy = count x spot energy."""
        raw = first * self.first_std + self.first_mean
        q = raw[..., 0].exp().double().cpu().numpy()
        n = torch.floor(torch.expm1(raw[..., 1])).clamp(min=0).long().cpu().numpy()
        fractions = (second * self.second_std + self.second_mean).double().cpu().numpy()
        voxels = split_azimuth(ring_counts_from_fractions(n, fractions), self.cfg.geometry.n_alpha, rng)
        return torch.from_numpy((voxels * q[..., None, None]).reshape(len(q), -1).astype(np.float32))


class SpotShowerSet(Dataset):
    """``(first [L, 2], second [L, R], mask [L], energy [1])``: standardised stage-1 features with fresh
    dequantisation noise at every access, standardised ring fractions, the layers with spots, E_inc [MeV]."""

    def __init__(self, model: CaloFlow, energy: torch.Tensor, features: SpotFeatures) -> None:
        self.model, self.energy = model, energy
        self.log_q, self.n, self.fractions = (torch.from_numpy(a) for a in (features.log_q, features.n,
                                                                           features.fractions))

    def __len__(self) -> int:
        return len(self.energy)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        first = energy_features(self.log_q[i], self.n[i], torch.rand(self.n.shape[1]))
        with torch.no_grad():
            first, second = self.model.standardise(first, self.fractions[i])
        return first, second, self.n[i] > 0, self.energy[i]


def training_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict]:
    """Flow-matching loss of stage 1 plus that of stage 2 (on layers with spots, given clean stage 1)."""
    first, second, mask, energy = batch
    net: CaloFlow = getattr(model, "module", model)
    first_t, t1, target1 = straight_path(first, times=net.cfg.times)
    second_t, t2, target2 = straight_path(second, times=net.cfg.times)
    v1, v2 = model(first_t, t1, second_t, t2, net.energy_code(energy), first)
    loss1, loss2 = weighted_mse(v1, target1), weighted_mse(v2, target2, mask[..., None])
    return loss1 + loss2, {"loss_energies": loss1.item(), "loss_shapes": loss2.item()}


@dataclass
class CaloFlowRun:
    """A training run; defaults are the reference configuration of docs/hep.md."""

    data_dir: str = "runs/data/calo"   # folder with train.h5 (physml data generate calo)
    model: CaloFlowConfig = field(default_factory=CaloFlowConfig)
    max_showers: int | None = None     # train on the first showers only (None: all)
    validation_showers: int = 0        # hold out the last N: validation loss and high-level classifier AUC
    #                                    (hl_auc; --select-by hl_auc keeps the best) at every evaluation
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/calo_flow", steps=10_000, batch_size=256, lr=1e-3, schedule="cosine", lr_final=1e-5,
        warmup_steps=500, log_every=100, eval_every=0, precision="fp32"))  # bf16 autocast ran 2x slower on
    #                                 an avx512_bf16 CPU at these widths (0.52 against 0.26 s per step)


def build_model(run: CaloFlowRun) -> CaloFlow:
    return CaloFlow(run.model)


def build(run: CaloFlowRun) -> Built:
    """Spot features of ``train.h5`` and their standardisation (the checkpoint holds it with the network);
    the geometry is the file's."""
    path = Path(run.data_dir) / "train.h5"
    run.model = dataclasses.replace(run.model, geometry=read_geometry(path))
    model = build_model(run)
    geometry = run.model.geometry
    energy, showers = read_showers(path, geometry, run.max_showers)
    held = run.validation_showers
    if not 0 <= held <= len(energy) // 2:
        raise ValueError(f"--validation-showers {held}: between 0 and half of the {len(energy)} training showers")
    split = len(energy) - held
    features = SpotFeatures.of(showers[:split], geometry)
    model.fit_transform(features, torch.rand(features.n.shape), torch.from_numpy(showers[:split].sum(1)),
                        torch.from_numpy(energy[:split]))
    train_set = SpotShowerSet(model, torch.from_numpy(energy[:split]), features)
    if not held:
        return Built(model, train_set, None, None, training_loss)
    valid_set = SpotShowerSet(model, torch.from_numpy(energy[split:]), SpotFeatures.of(showers[split:], geometry))
    return Built(model, train_set, valid_set, None, training_loss,
                 eval_metrics=high_level_auc(showers[split:], energy[split:], geometry))


def high_level_auc(showers: np.ndarray, energy: np.ndarray, geometry: CaloGeometry, steps: int = 16,
                   hidden: int = 64, seed: int = 0):
    """An evaluation metric for the Trainer: ``hl_auc``, the AUC of the challenge's high-level classifier
    (``hidden`` units, ``evaluate calo``'s test at a validation-sized cost) telling the flow's showers (Euler,
    ``steps`` steps, no energy model) from ``showers [N, V]`` at their incident energies ``[N, 1]`` [MeV]."""
    log_e = np.log10(energy)
    reference = np.column_stack([metrics.feature_matrix(metrics.high_level_features(showers, energy, geometry)),
                                 log_e])

    def metric(model: CaloFlow) -> dict[str, float]:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
        generated = model.generate(torch.from_numpy(energy), model.sampler("euler", steps), generator).cpu().numpy()
        features = metrics.feature_matrix(metrics.high_level_features(generated, energy, geometry))
        return {"hl_auc": metrics.classifier_test(reference, np.column_stack([features, log_e]), seed=seed,
                                                  hidden=hidden)["auc"]}

    return metric


RECIPE = Recipe("calo-flow", "two-stage flow-matching shower generator (layer transformers, spot counts)",
                CaloFlowRun, build, build_model)
