"""Weakly-compressible SPH (Monaghan 1994, 2005) in 2-D and 3-D, numba-compiled.

Density by summation, ``rho_i = sum_j m W(|x_i - x_j|, h)`` with the Wendland C2 kernel (support 2h);
pressure by Tait's equation of state ``p = B ((rho / rho0)^7 - 1)``, ``B = c0^2 rho0 / 7``, clipped at 0
so free surfaces carry no tension; momentum

    dv_i/dt = - sum_j m (p_i / rho_i^2 + p_j / rho_j^2 + Pi_ij) grad_i W_ij + g

with Monaghan's artificial viscosity ``Pi_ij = -alpha c0 h mu_ij / rho_ij`` on approaching pairs. Walls
are layers of fixed particles that take part in the density sum and push back with a pressure
extrapolated from the fluid next to them, hydrostatic part included (Adami, Hu & Adams 2012), which
keeps the hydrostatic pressure right near walls. Time stepping is velocity Verlet with
sub-steps limited by the CFL and force conditions, landing exactly on every output frame.
Neighbours come from :func:`gnn.neighbours.radius_graph`. Units: SI (m, s, kg, Pa).

The fluid's energy is ``E = sum (m v^2 / 2 + m g y) + sum m U(rho)`` over fluid particles, with
``U(rho) = B [(rho^6 - rho0^6) / (6 rho0^7) + 1/rho - 1/rho0]`` for ``rho > rho0`` (``dU/drho = p / rho^2``);
the walls do no work on average and viscosity removes energy, so E must not grow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from gnn.neighbours import radius_graph

FLUID, BOUNDARY = 5, 3  # particle types, as DeepMind's datasets number water and kinematic particles


@dataclass(frozen=True)
class SPHConfig:
    """Physical and numerical parameters; defaults give water in a 1 m box at 2 cm resolution."""

    dim: int = 2
    box: tuple[float, ...] = (1.0, 1.0)  # tank size per axis [m]; walls on every side
    spacing: float = 0.02               # initial particle spacing dx [m]
    h_factor: float = 1.3               # smoothing length h = h_factor * dx
    rho0: float = 1000.0                # rest density [kg/m^3]
    gravity: float = 9.81               # along -y (the second axis) [m/s^2]
    sound_speed: float = 0.0            # c0 [m/s]; 0 means 10 sqrt(g * box height), Mach <= 0.1
    alpha: float = 0.1                  # artificial viscosity
    cfl: float = 0.25
    boundary_layers: int = 3

    @property
    def h(self) -> float:
        return self.h_factor * self.spacing

    @property
    def c0(self) -> float:
        return self.sound_speed or 10.0 * math.sqrt(self.gravity * self.box[1])

    @property
    def stiffness(self) -> float:
        """Tait's B [Pa]."""
        return self.c0 ** 2 * self.rho0 / 7.0


@numba.njit(cache=True, inline="always")
def _kernel(r, h, dim):
    """Wendland C2 kernel W(r, h) and dW/dr (support 2h)."""
    norm = 7.0 / (4.0 * np.pi * h * h) if dim == 2 else 21.0 / (16.0 * np.pi * h * h * h)
    q = r / h
    if q >= 2.0:
        return 0.0, 0.0
    t = 1.0 - 0.5 * q
    return norm * t ** 4 * (2.0 * q + 1.0), norm * (-5.0 * q * t ** 3) / h


@numba.njit(cache=True)
def _density(x, senders, receivers, mass, h):
    dim = x.shape[1]
    rho = np.full(x.shape[0], mass * _kernel(0.0, h, dim)[0])
    for e in range(senders.shape[0]):
        i, j = receivers[e], senders[e]
        r = 0.0
        for a in range(dim):
            r += (x[i, a] - x[j, a]) ** 2
        rho[i] += mass * _kernel(np.sqrt(r), h, dim)[0]
    return rho


@numba.njit(cache=True)
def _wall_pressure(x, rho, p, senders, receivers, n_fluid, h, gravity):
    """Pressure of wall particles extrapolated from the fluid around them (Adami et al. 2012):
    ``p_w = sum_f (p_f + rho_f g (y_f - y_w)) W_wf / sum_f W_wf``; walls with no fluid near stay at 0."""
    dim = x.shape[1]
    num = np.zeros(x.shape[0])
    den = np.zeros(x.shape[0])
    for e in range(senders.shape[0]):
        w, f = receivers[e], senders[e]
        if w < n_fluid or f >= n_fluid:
            continue
        r = 0.0
        for a in range(dim):
            r += (x[w, a] - x[f, a]) ** 2
        kw = _kernel(np.sqrt(r), h, dim)[0]
        num[w] += (p[f] + rho[f] * gravity * (x[f, 1] - x[w, 1])) * kw
        den[w] += kw
    for w in range(n_fluid, x.shape[0]):
        p[w] = max(num[w] / den[w], 0.0) if den[w] > 0 else 0.0


@numba.njit(cache=True)
def _acceleration(x, v, rho, p, senders, receivers, n_fluid, mass, h, alpha, c0, gravity):
    """Accelerations of the fluid particles ``[n_fluid, D]``."""
    dim = x.shape[1]
    acc = np.zeros((n_fluid, dim))
    acc[:, 1] = -gravity
    for e in range(senders.shape[0]):
        i, j = receivers[e], senders[e]
        if i >= n_fluid:
            continue
        r2, vr = 0.0, 0.0
        for a in range(dim):
            dx = x[i, a] - x[j, a]
            r2 += dx * dx
            vr += (v[i, a] - v[j, a]) * dx
        r = np.sqrt(r2)
        if r == 0.0:
            continue
        dwdr = _kernel(r, h, dim)[1]
        coef = p[i] / rho[i] ** 2 + p[j] / rho[j] ** 2
        if vr < 0.0:
            mu = h * vr / (r2 + 0.01 * h * h)
            coef += -alpha * c0 * mu / (0.5 * (rho[i] + rho[j]))
        for a in range(dim):
            acc[i, a] -= mass * coef * dwdr * (x[i, a] - x[j, a]) / r
    return acc


def lattice(lo: np.ndarray, hi: np.ndarray, spacing: float) -> np.ndarray:
    """Cell-centred lattice points filling the box [lo, hi] ``[M, D]``."""
    axes = [np.arange(a + spacing / 2, b - spacing / 4, spacing) for a, b in zip(lo, hi)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(lo))


class SPH:
    """A tank of fluid particles: ``x`` and ``v`` of fluid first, then the fixed boundary particles."""

    def __init__(self, cfg: SPHConfig, fluid_positions: np.ndarray, fluid_velocities: np.ndarray | None = None):
        if fluid_positions.ndim != 2 or fluid_positions.shape[1] != cfg.dim or len(cfg.box) != cfg.dim:
            raise ValueError(f"fluid positions must be [N, {cfg.dim}] and box {cfg.dim} lengths")
        box = np.asarray(cfg.box, dtype=np.float64)
        if (fluid_positions < 0).any() or (fluid_positions > box).any():
            raise ValueError(f"fluid particles must start inside the box {cfg.box}")
        self.cfg = cfg
        pad = cfg.boundary_layers * cfg.spacing
        shell = lattice(-np.full(cfg.dim, pad), box + pad, cfg.spacing)
        walls = shell[((shell < 0) | (shell > box)).any(axis=1)]
        self.n_fluid = len(fluid_positions)
        self.x = np.concatenate([fluid_positions, walls]).astype(np.float64)
        self.v = np.zeros_like(self.x)
        if fluid_velocities is not None:
            self.v[: self.n_fluid] = fluid_velocities
        # mass such that a full lattice sums to rho0 exactly, so a fluid at rest starts at p = 0
        probe = lattice(np.zeros(cfg.dim), np.full(cfg.dim, 8 * cfg.h), cfg.spacing)
        centre = probe[np.argmin(np.linalg.norm(probe - 4 * cfg.h, axis=1))]
        w = _kernel_sum(probe, centre, cfg.h)
        self.mass = cfg.rho0 / w
        self.time = 0.0
        self._neighbours()

    @property
    def particle_type(self) -> np.ndarray:
        return np.where(np.arange(len(self.x)) < self.n_fluid, FLUID, BOUNDARY)

    def _neighbours(self) -> None:
        self.senders, self.receivers = radius_graph(self.x, 2 * self.cfg.h)
        c = self.cfg
        self.rho = _density(self.x, self.senders, self.receivers, self.mass, c.h)
        self.p = np.maximum(c.stiffness * ((self.rho / c.rho0) ** 7 - 1.0), 0.0)
        _wall_pressure(self.x, self.rho, self.p, self.senders, self.receivers, self.n_fluid, c.h, c.gravity)
        walls = slice(self.n_fluid, None)  # wall density from its pressure, by the inverse equation of state
        self.rho[walls] = c.rho0 * (self.p[walls] / c.stiffness + 1.0) ** (1.0 / 7.0)
        self.a = _acceleration(self.x, self.v, self.rho, self.p, self.senders, self.receivers, self.n_fluid,
                               self.mass, c.h, c.alpha, c.c0, c.gravity)

    def max_dt(self) -> float:
        """The CFL and force limits on the time step [s]."""
        c = self.cfg
        vmax = float(np.sqrt((self.v[: self.n_fluid] ** 2).sum(axis=1).max())) if self.n_fluid else 0.0
        amax = float(np.sqrt((self.a ** 2).sum(axis=1).max())) if self.n_fluid else 0.0
        return min(c.cfl * c.h / (c.c0 + vmax), 0.25 * math.sqrt(c.h / max(amax, 1e-12)))

    def step(self, dt: float) -> None:
        """One velocity-Verlet step of the fluid (boundary particles stay fixed)."""
        n = self.n_fluid
        self.v[:n] += 0.5 * dt * self.a
        self.x[:n] += dt * self.v[:n]
        self._neighbours()
        self.v[:n] += 0.5 * dt * self.a
        self.time += dt

    def advance(self, duration: float) -> int:
        """Integrate for ``duration`` seconds in CFL-limited sub-steps; returns how many were taken."""
        steps = max(1, math.ceil(duration / self.max_dt() - 1e-9))
        for _ in range(steps):
            self.step(duration / steps)
        return steps

    def energy(self) -> float:
        """Kinetic + gravitational + compression energy [J] (see the module docstring)."""
        c, n = self.cfg, self.n_fluid
        kinetic = 0.5 * self.mass * float((self.v[:n] ** 2).sum())
        potential = self.mass * c.gravity * float(self.x[:n, 1].sum())
        rho = np.maximum(self.rho[:n], c.rho0)
        internal = c.stiffness * ((rho ** 6 - c.rho0 ** 6) / (6 * c.rho0 ** 7) + 1 / rho - 1 / c.rho0)
        return kinetic + potential + self.mass * float(internal.sum())

    @property
    def fluid_positions(self) -> np.ndarray:
        return self.x[: self.n_fluid]


def _kernel_sum(points: np.ndarray, centre: np.ndarray, h: float) -> float:
    r = np.linalg.norm(points - centre, axis=1)
    return float(sum(_kernel(float(ri), h, points.shape[1])[0] for ri in r))
