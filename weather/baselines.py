"""The nowcasts every new method must beat, and trained models, behind one interface.

``forecast(context [C, H, W] mm/h, members, seed) -> [members, leads, H, W] mm/h``:

- :class:`Persistence`: the last observed frame, unchanged (Eulerian persistence);
- :class:`Extrapolation`: Lagrangian persistence, pysteps' Lucas-Kanade motion field on dB-transformed rain and
  semi-Lagrangian advection of the last frame (rain cannot enter from outside the image: 0 there);
- :class:`SProg`: pysteps' S-PROG (Seed 2003), the deterministic forecast of STEPS' model: the extrapolated
  cascade with each level's AR(2) decay (scales that decorrelate within the lead time fade), probability-
  matched to the last frame;
- :class:`Steps`: pysteps' STEPS ensemble (6-level cascade, AR(2) per level, stochastic noise and motion
  perturbations), the operational probabilistic baseline;
- :class:`ModelNowcast`: a trained DGMR generator or latent nowcaster (one latent draw per member) or the
  U-Net (deterministic).
Deterministic methods return one member whatever ``members`` asks.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from torch import nn

THRESHOLD = 0.1     # mm/h: the smallest rain rate (radar detection limit of the archive)
ZERO_DB = -15.0     # dB value given to dry pixels for motion estimation and STEPS


def to_db(rain: np.ndarray) -> np.ndarray:
    """``10 log10(R)`` for ``R >= THRESHOLD``, ``ZERO_DB`` elsewhere (pysteps' dB transform)."""
    out = np.full(rain.shape, ZERO_DB)
    wet = rain >= THRESHOLD
    out[wet] = 10.0 * np.log10(rain[wet])
    return out


def from_db(db: np.ndarray) -> np.ndarray:
    rain = 10.0 ** (np.nan_to_num(db, nan=ZERO_DB) / 10.0)
    return np.where(rain >= THRESHOLD, rain, 0.0)


class Persistence:
    name = "persistence"
    stochastic = False

    def __init__(self, leads: int = 18) -> None:
        self.leads = leads

    def forecast(self, context: np.ndarray, members: int = 1, seed: int = 0) -> np.ndarray:
        return np.repeat(context[None, -1:], self.leads, axis=1)


def motion_field(context: np.ndarray) -> np.ndarray:
    """Lucas-Kanade motion ``[2, H, W]`` (x, y components in pixels per frame) from the context frames."""
    from pysteps import motion

    if not (context >= THRESHOLD).any():
        return np.zeros((2, *context.shape[1:]))
    return motion.get_method("LK")(to_db(context), verbose=False)


class Extrapolation:
    name = "extrapolation (pysteps LK)"
    stochastic = False

    def __init__(self, leads: int = 18) -> None:
        self.leads = leads

    def forecast(self, context: np.ndarray, members: int = 1, seed: int = 0) -> np.ndarray:
        from pysteps import extrapolation

        velocity = motion_field(context)
        out = extrapolation.get_method("semilagrangian")(context[-1].astype(np.float64), velocity, self.leads,
                                                         outval=0.0)
        return np.nan_to_num(out, nan=0.0)[None]


def extrapolate(context: torch.Tensor, leads: int) -> torch.Tensor:
    """pysteps' extrapolation (:class:`Extrapolation`) of each context of a batch, for the models that start
    from it.

    Args:
        context: ``[B, C, H, W]`` mm/h.
        leads: frames to forecast.

    Returns:
        ``[B, leads, H, W]`` mm/h, with the context's dtype and device.
    """
    method = Extrapolation(leads)
    frames = [method.forecast(c.double().cpu().numpy())[0] for c in context]
    return torch.as_tensor(np.stack(frames), dtype=context.dtype, device=context.device)


class SProg:
    name = "S-PROG (pysteps)"
    stochastic = False

    def __init__(self, leads: int = 18, cascade_levels: int = 6) -> None:
        self.leads, self.levels = leads, cascade_levels

    def forecast(self, context: np.ndarray, members: int = 1, seed: int = 0) -> np.ndarray:
        from pysteps import nowcasts

        h, w = context.shape[1:]
        if (context[-3:] >= THRESHOLD).mean() < 1e-3:  # no cascade to fit; dry stays dry
            return np.zeros((1, self.leads, h, w))
        velocity = motion_field(context)
        with contextlib.redirect_stdout(io.StringIO()):
            out = nowcasts.get_method("sprog")(to_db(context[-3:]), velocity, self.leads,
                                               n_cascade_levels=self.levels, precip_thr=10.0 * np.log10(THRESHOLD))
        return from_db(out)[None]


class Steps:
    name = "STEPS (pysteps)"
    stochastic = True

    def __init__(self, leads: int = 18, pixel_km: float = 1.0, step_minutes: float = 5.0,
                 cascade_levels: int = 6) -> None:
        self.leads, self.pixel_km, self.step_minutes, self.levels = leads, pixel_km, step_minutes, cascade_levels

    def forecast(self, context: np.ndarray, members: int = 6, seed: int = 0) -> np.ndarray:
        from pysteps import nowcasts

        h, w = context.shape[1:]
        if (context[-3:] >= THRESHOLD).mean() < 1e-3:  # STEPS needs rain to fit its cascade; dry stays dry
            return np.zeros((members, self.leads, h, w))
        velocity = motion_field(context)
        with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints a page of settings per call
            out = nowcasts.get_method("steps")(
                to_db(context[-3:]), velocity, self.leads, n_ens_members=members, n_cascade_levels=self.levels,
                precip_thr=10.0 * np.log10(THRESHOLD), kmperpixel=self.pixel_km, timestep=self.step_minutes,
                noise_method="nonparametric", vel_pert_method="bps", mask_method="incremental", seed=seed)
        return from_db(out)


class ModelNowcast:
    """A trained model ``[B, C, H, W] -> [B, T, H, W]`` (mm/h); stochastic models draw one sample per member
    (through the model's ``ensemble(context, members, generator)`` where it has one)."""

    def __init__(self, model: nn.Module, name: str, stochastic: bool, batch: int = 6) -> None:
        self.model, self.name, self.stochastic, self.batch = model, name, stochastic, batch

    @torch.no_grad()
    def forecast(self, context: np.ndarray, members: int = 6, seed: int = 0) -> np.ndarray:
        device = next(self.model.parameters()).device
        x = torch.as_tensor(context, dtype=torch.float32, device=device)[None]
        if not self.stochastic:
            return self.model(x).cpu().numpy()
        rng = torch.Generator(device=device).manual_seed(seed)
        if hasattr(self.model, "ensemble"):
            return torch.cat([self.model.ensemble(x, min(self.batch, members - start), rng)
                              for start in range(0, members, self.batch)]).cpu().numpy()
        out = []
        for start in range(0, members, self.batch):
            n = min(self.batch, members - start)
            out.append(self.model(x.expand(n, -1, -1, -1), generator=rng).cpu().numpy())
        return np.concatenate(out)
