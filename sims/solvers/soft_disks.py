"""Soft disks in a box under gravity: a granular-gas solver integrated with velocity Verlet.

Equal disks of mass m and diameter sigma repel with a harmonic contact force when they overlap,
``F_ij = k (sigma - r_ij) r_hat_ij`` for ``r_ij < sigma`` (potential ``k/2 (sigma - r)^2``); the four walls
of the box push back the same way on a disk's overlap with them; gravity pulls along -y. Contacts
come from :func:`gnn.neighbours.radius_graph` each sub-step. Without damping the total energy is
conserved up to the O(dt^2) error of Verlet, and pair forces conserve momentum exactly.
Units: SI (m, s, kg).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnn.neighbours import radius_graph


@dataclass(frozen=True)
class SoftDisks:
    """Parameters of the system; defaults give ~150 disks of 4 cm in a 1 m box."""

    sigma: float = 0.04          # disk diameter [m]
    stiffness: float = 2.0e4     # contact and wall spring constant k [N/m]
    mass: float = 1.0            # [kg]
    gravity: float = 2.0         # [m/s^2], along -y
    box: tuple[float, float] = (1.0, 1.0)  # [m]
    substeps: int = 20           # Verlet steps per output frame
    frame_dt: float = 0.01       # time between output frames [s]

    @property
    def dt(self) -> float:
        return self.frame_dt / self.substeps


def forces(system: SoftDisks, x: np.ndarray) -> np.ndarray:
    """Total force on every disk ``[N, 2]`` (contacts, walls, gravity) for positions ``x [N, 2]``."""
    senders, receivers = radius_graph(x, system.sigma)
    d = x[receivers] - x[senders]
    r = np.maximum(np.linalg.norm(d, axis=1), 1e-12)
    pair = (system.stiffness * (system.sigma - r) / r)[:, None] * d
    f = np.zeros_like(x)
    for a in range(2):
        f[:, a] = np.bincount(receivers, weights=pair[:, a], minlength=len(x))
    radius = system.sigma / 2
    for a, length in enumerate(system.box):
        f[:, a] += system.stiffness * (np.maximum(radius - x[:, a], 0) - np.maximum(x[:, a] + radius - length, 0))
    f[:, 1] -= system.mass * system.gravity
    return f


def energy(system: SoftDisks, x: np.ndarray, v: np.ndarray) -> float:
    """Kinetic + contact + wall + gravitational energy [J]."""
    senders, receivers = radius_graph(x, system.sigma)
    r = np.linalg.norm(x[receivers] - x[senders], axis=1)
    contact = 0.25 * system.stiffness * np.sum((system.sigma - r) ** 2)  # each pair appears twice
    radius = system.sigma / 2
    wall = sum(0.5 * system.stiffness * np.sum(np.maximum(radius - x[:, a], 0) ** 2
                                               + np.maximum(x[:, a] + radius - length, 0) ** 2)
               for a, length in enumerate(system.box))
    kinetic = 0.5 * system.mass * np.sum(v ** 2)
    return float(kinetic + contact + wall + system.mass * system.gravity * np.sum(x[:, 1]))


class Verlet:
    """The disks' state ``x``, ``v`` [N, 2], advanced by velocity Verlet (the interface of :class:`SPH`)."""

    def __init__(self, system: SoftDisks, x0: np.ndarray, v0: np.ndarray):
        self.system = system
        self.x, self.v = x0.astype(np.float64).copy(), v0.astype(np.float64).copy()
        self.a = forces(system, self.x) / system.mass

    def step(self, dt: float) -> None:
        """One velocity-Verlet step of ``dt`` seconds."""
        self.v += 0.5 * dt * self.a
        self.x += dt * self.v
        self.a = forces(self.system, self.x) / self.system.mass
        self.v += 0.5 * dt * self.a

    def advance(self, duration: float) -> int:
        """Integrate for ``duration`` seconds in steps of at most ``system.dt``; returns how many were taken."""
        steps = max(1, round(duration / self.system.dt))
        for _ in range(steps):
            self.step(duration / steps)
        return steps


def simulate(system: SoftDisks, x0: np.ndarray, v0: np.ndarray, frames: int) -> np.ndarray:
    """Positions at ``frames`` output times, starting with ``x0``: ``[frames, N, 2]``."""
    state = Verlet(system, x0, v0)
    out = np.empty((frames,) + state.x.shape)
    out[0] = state.x
    for t in range(1, frames):
        state.advance(system.frame_dt)
        out[t] = state.x
    return out


def random_state(system: SoftDisks, n: int, rng: np.random.Generator,
                 speed: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``n`` non-overlapping disks on a jittered lattice in the lower part of the box, random velocities."""
    spacing = system.sigma * 1.25
    cols = int((system.box[0] - system.sigma) // spacing)
    rows = -(-n // cols)
    if rows * spacing > system.box[1] - system.sigma:
        raise ValueError(f"{n} disks of diameter {system.sigma} do not fit in the box {system.box}")
    cells = rng.choice(cols * (rows + 1), size=n, replace=False)
    jitter = rng.uniform(-0.1, 0.1, (n, 2)) * system.sigma
    x = system.sigma + np.stack([cells % cols, cells // cols], axis=1) * spacing + jitter
    return x, rng.normal(0.0, speed, (n, 2))
