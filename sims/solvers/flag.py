"""A flag: cloth on a triangle mesh pinned along its pole edge, under gravity and gusting wind.

Mass-spring cloth (Provot 1995): stretch/shear springs on the mesh edges, bending springs between the two
vertices opposite each interior edge, lumped masses (a third of each triangle's mass per vertex), viscous
damping along the springs. Wind acts on each triangle as a pressure along its normal,
``F = 1/2 rho_air C |u_n| u_n A n`` with ``u_n`` the normal component of the air velocity relative to the
triangle, shared by its three vertices. The wind is uniform in space and gusts in time: a mean along +x plus
a few sinusoids with random frequencies and phases per trajectory. Velocity Verlet with sub-steps below the
spring stability limit, numba-compiled; nodes of type HANDLE (the pole edge) never move. Without wind and
damping the total energy (kinetic + spring + gravitational) is conserved up to Verlet's O(dt^2) error.
Units: m, kg, s; gravity along -y, the pole along y at x = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from datasets.meshes import HANDLE, NORMAL, MeshTrajectory
from sims.mesh import grid_mesh, interior_edge_opposites, mesh_edges


@dataclass(frozen=True)
class FlagConfig:
    """Defaults: a 1 m x 0.6 m flag of light fabric in a 6 m/s wind, 50 frames per second."""

    width: float = 1.0          # m, away from the pole
    height: float = 0.6         # m, along the pole
    nx: int = 21                # nodes along the width
    ny: int = 13                # nodes along the height
    density: float = 0.15       # kg/m^2
    stretch: float = 300.0      # N/m, spring constant of every mesh edge
    bend: float = 0.5           # N/m, spring constant across every interior edge
    damping: float = 0.01       # N s/m, along every spring
    gravity: float = 9.81       # m/s^2, along -y
    air_density: float = 1.2    # kg/m^3
    drag: float = 1.0           # normal-pressure coefficient C
    wind: float = 6.0           # m/s, mean along +x
    gust: float = 2.0           # m/s, amplitude of the gusts (each component)
    frame_dt: float = 0.02      # s between output frames
    cfl: float = 0.3            # sub-step = cfl / omega_max of the stiffest spring

    def __post_init__(self) -> None:
        if self.nx < 2 or self.ny < 2:
            raise ValueError(f"the flag mesh needs at least 2 x 2 nodes, got {self.nx} x {self.ny}")
        if min(self.width, self.height, self.density, self.frame_dt) <= 0:
            raise ValueError("width, height, density and frame_dt must be positive")


@dataclass(frozen=True)
class Flag:
    """The mesh and its springs: ``mesh_pos [N, 2]`` (m, the flat flag), ``cells [C, 3]``, ``node_type [N]``,
    ``springs [S, 2]`` with ``rest [S]`` (m) and ``stiffness [S]`` (N/m), ``mass [N]`` (kg)."""

    config: FlagConfig
    mesh_pos: np.ndarray
    cells: np.ndarray
    node_type: np.ndarray
    springs: np.ndarray
    rest: np.ndarray
    stiffness: np.ndarray
    mass: np.ndarray

    @property
    def substeps(self) -> int:
        omega = np.sqrt(2 * self.stiffness.max() / self.mass.min())  # two-body mode of the stiffest spring
        return max(1, int(np.ceil(self.config.frame_dt * omega / self.config.cfl)))

    def initial_world_pos(self) -> np.ndarray:
        """The flat flag in the x-y plane, pole along y at x = 0."""
        return np.column_stack([self.mesh_pos, np.zeros(len(self.mesh_pos))])


def make_flag(config: FlagConfig = FlagConfig()) -> Flag:
    mesh_pos, cells = grid_mesh(config.width, config.height, config.nx, config.ny)
    node_type = np.where(mesh_pos[:, 0] == 0.0, HANDLE, NORMAL).astype(np.int64)
    edges = mesh_edges(cells)
    bending = interior_edge_opposites(cells)
    springs = np.concatenate([edges, bending])
    rest = np.linalg.norm(mesh_pos[springs[:, 1]] - mesh_pos[springs[:, 0]], axis=1)
    stiffness = np.concatenate([np.full(len(edges), config.stretch), np.full(len(bending), config.bend)])
    a, b, c = (mesh_pos[cells[:, i]] for i in range(3))
    area = 0.5 * np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    mass = np.zeros(len(mesh_pos))
    np.add.at(mass, cells.ravel(), np.repeat(config.density * area / 3, 3))
    return Flag(config, mesh_pos, cells, node_type, springs, rest, stiffness, mass)


@dataclass(frozen=True)
class Wind:
    """``mean + sum_m amp sin(2 pi freq t + phase)`` per component (m/s); gusts of 0.2-2 Hz."""

    mean: np.ndarray   # [3]
    amp: np.ndarray    # [3, modes]
    freq: np.ndarray   # [3, modes], Hz
    phase: np.ndarray  # [3, modes]

    @classmethod
    def draw(cls, config: FlagConfig, seed: int, modes: int = 3) -> "Wind":
        rng = np.random.default_rng(seed)
        freq, phase = rng.uniform(0.2, 2.0, (3, modes)), rng.uniform(0, 2 * np.pi, (3, modes))
        return cls(np.array([config.wind, 0.0, 0.0]), config.gust * rng.dirichlet(np.ones(modes), 3), freq, phase)

    def __call__(self, t: float) -> np.ndarray:
        return _wind(self.mean, self.amp, self.freq, self.phase, t)


@numba.njit(cache=True)
def _wind(mean, amp, freq, phase, t):
    out = mean.copy()
    for k in range(amp.shape[0]):
        for m in range(amp.shape[1]):
            out[k] += amp[k, m] * np.sin(2 * np.pi * freq[k, m] * t + phase[k, m])
    return out


@numba.njit(cache=True)
def _accelerations(x, v, springs, rest, stiffness, damping, cells, wind, air, mass, gravity, free, out):
    out[:] = 0.0
    for s in range(springs.shape[0]):
        i, j = springs[s, 0], springs[s, 1]
        dx, dy, dz = x[j, 0] - x[i, 0], x[j, 1] - x[i, 1], x[j, 2] - x[i, 2]
        length = np.sqrt(dx * dx + dy * dy + dz * dz)
        if length == 0.0:
            continue
        dx, dy, dz = dx / length, dy / length, dz / length
        closing = (v[j, 0] - v[i, 0]) * dx + (v[j, 1] - v[i, 1]) * dy + (v[j, 2] - v[i, 2]) * dz
        f = stiffness[s] * (length - rest[s]) + damping * closing
        out[i, 0] += f * dx
        out[i, 1] += f * dy
        out[i, 2] += f * dz
        out[j, 0] -= f * dx
        out[j, 1] -= f * dy
        out[j, 2] -= f * dz
    if air != 0.0:
        for c in range(cells.shape[0]):
            a, b, e = cells[c, 0], cells[c, 1], cells[c, 2]
            ux, uy, uz = x[b, 0] - x[a, 0], x[b, 1] - x[a, 1], x[b, 2] - x[a, 2]
            wx, wy, wz = x[e, 0] - x[a, 0], x[e, 1] - x[a, 1], x[e, 2] - x[a, 2]
            nx, ny, nz = uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx  # |n| = 2 A
            twice_area = np.sqrt(nx * nx + ny * ny + nz * nz)
            if twice_area == 0.0:
                continue
            u_n = 0.0
            for k, n_k in enumerate((nx, ny, nz)):
                u_n += (wind[k] - (v[a, k] + v[b, k] + v[e, k]) / 3.0) * n_k / twice_area
            # pressure 1/2 rho C |u_n| u_n on area A, a third to each vertex: p A n_hat / 3 = p n / 6
            f = 0.5 * air * abs(u_n) * u_n / 6.0
            for k, n_k in enumerate((nx, ny, nz)):
                out[a, k] += f * n_k
                out[b, k] += f * n_k
                out[e, k] += f * n_k
    for n in range(x.shape[0]):
        if free[n]:
            out[n, 0] /= mass[n]
            out[n, 1] = out[n, 1] / mass[n] - gravity
            out[n, 2] /= mass[n]
        else:
            out[n, 0] = out[n, 1] = out[n, 2] = 0.0


@numba.njit(cache=True)
def _advance(x, v, acc, t, dt, substeps, springs, rest, stiffness, damping, cells, air, mass, gravity, free,
             mean, amp, freq, phase):
    """``substeps`` velocity-Verlet steps from time ``t``, in place; ``acc`` holds a(x, v, t) on entry."""
    for step in range(substeps):
        v += 0.5 * dt * acc
        x += dt * v
        wind = _wind(mean, amp, freq, phase, t + (step + 1) * dt)
        _accelerations(x, v, springs, rest, stiffness, damping, cells, wind, air, mass, gravity, free, acc)
        v += 0.5 * dt * acc


def simulate_flag(flag: Flag, frames: int, seed: int = 0,
                  world_pos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``world_pos`` (m) and ``velocity`` (m/s), both ``[frames, N, 3]``; frame 0 is the initial state
    (default: flat, at rest). ``seed`` draws the gusts."""
    cfg = flag.config
    x = flag.initial_world_pos() if world_pos is None else np.array(world_pos, dtype=np.float64)
    v = np.zeros_like(x)
    free = flag.node_type != HANDLE
    wind = Wind.draw(cfg, seed)
    substeps = flag.substeps
    dt = cfg.frame_dt / substeps
    air = cfg.air_density * cfg.drag
    model = (flag.springs, flag.rest, flag.stiffness, cfg.damping, flag.cells)
    acc = np.empty_like(x)
    _accelerations(x, v, *model, wind(0.0), air, flag.mass, cfg.gravity, free, acc)
    positions, velocities = np.empty((2, frames, *x.shape))
    positions[0], velocities[0] = x, v
    for frame in range(1, frames):
        _advance(x, v, acc, (frame - 1) * cfg.frame_dt, dt, substeps, *model, air, flag.mass, cfg.gravity, free,
                 wind.mean, wind.amp, wind.freq, wind.phase)
        positions[frame], velocities[frame] = x, v
    return positions, velocities


def flag_trajectory(flag: Flag, frames: int, seed: int = 0) -> MeshTrajectory:
    """A flag released flat and at rest into the gusts of ``seed``: ``world_pos [T, N, 3]`` (m) and the
    wind velocity at each frame's time, the same at every node, ``wind [T, N, 3]`` (m/s): the forcing."""
    world_pos, _ = simulate_flag(flag, frames, seed)
    gusts = Wind.draw(flag.config, seed)
    wind = np.stack([gusts(frame * flag.config.frame_dt) for frame in range(frames)])
    return MeshTrajectory(flag.mesh_pos, flag.cells, flag.node_type,
                          {"world_pos": world_pos, "wind": np.repeat(wind[:, None], len(flag.mesh_pos), axis=1)})


def energy(flag: Flag, x: np.ndarray, v: np.ndarray) -> float:
    """Kinetic + spring + gravitational energy (J) of state ``x, v [N, 3]``."""
    length = np.linalg.norm(x[flag.springs[:, 1]] - x[flag.springs[:, 0]], axis=1)
    return float(0.5 * (flag.mass * (v ** 2).sum(1)).sum() + 0.5 * (flag.stiffness * (length - flag.rest) ** 2).sum()
                 + flag.config.gravity * (flag.mass * x[:, 1]).sum())
