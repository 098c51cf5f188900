"""Initial conditions for the SPH solver: DeepMind-style water drops and the dam break.

Positions are in the solver's tank frame (walls at 0 and ``box``); datasets shift them so that the
tank spans ``offset .. offset + box`` as in DeepMind's WaterDrop bounds ([0.1, 0.9]^2).
"""
from __future__ import annotations

import numpy as np

from sims.solvers.sph import SPHConfig, lattice


def water_drops(cfg: SPHConfig, rng: np.random.Generator, max_drops: int = 3,
                radius: tuple[float, float] = (0.08, 0.16), speed: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """One to ``max_drops`` non-overlapping discs (balls in 3-D) of water, each with its own velocity."""
    box = np.asarray(cfg.box)
    grid = lattice(np.zeros(cfg.dim), box, cfg.spacing)
    taken = np.zeros(len(grid), dtype=bool)
    velocity = np.zeros_like(grid)
    for _ in range(rng.integers(1, max_drops + 1)):
        r = rng.uniform(*radius)
        centre = rng.uniform(r + cfg.spacing, box - r - cfg.spacing)
        inside = np.linalg.norm(grid - centre, axis=1) < r
        if (inside & taken).any() or inside.sum() < 10:
            continue
        taken |= inside
        velocity[inside] = rng.normal(0.0, speed, cfg.dim)
    if not taken.any():  # every drop overlapped an earlier one: keep a single centred drop
        taken = np.linalg.norm(grid - box / 2, axis=1) < radius[1]
    return grid[taken], velocity[taken]


def dam_break(cfg: SPHConfig, rng: np.random.Generator, width: tuple[float, float] = (0.2, 0.4),
              height: tuple[float, float] = (0.3, 0.6)) -> tuple[np.ndarray, np.ndarray]:
    """A column of water at rest against the left wall, of random width and height."""
    size = np.array([rng.uniform(*width), rng.uniform(*height), *cfg.box[2:]])
    column = lattice(np.zeros(cfg.dim), np.minimum(size, np.asarray(cfg.box)), cfg.spacing)
    return column, np.zeros_like(column)
