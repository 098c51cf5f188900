"""Incompressible flow past a cylinder in a 2-D channel: the ground truth of MeshGraphNets' CylinderFlow.

Navier-Stokes ``du/dt + (u . grad) u = -grad p + nu lap u``, ``div u = 0`` (density 1, so p is kinematic,
m^2/s^2) on an unstructured triangle mesh (DistMesh, refined at the cylinder), Taylor-Hood P2/P1 elements
from scikit-fem, and Goda's incremental pressure-correction scheme: a tentative velocity with Crank-Nicolson
viscosity and second-order Adams-Bashforth convection, a pressure-increment Poisson equation, a velocity
projection. The three matrices are constant and factorised once (scipy's SuperLU); a step costs one
convection assembly and three triangular solves. Boundaries: parabolic inflow of mean speed U at x = 0,
no-slip walls and cylinder, p = 0 and natural outflow at x = L.

The DFG 2D-2 benchmark (Schaefer & Turek 1996: L = 2.2, H = 0.41, cylinder at (0.2, 0.2) of radius 0.05,
U = 1, nu = 1e-3, Re = 100) sheds vortices with a Strouhal number f D / U of 0.295-0.305. Units: m, s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import diags
from scipy.sparse.linalg import splu

from datasets.meshes import INFLOW, NORMAL, OBSTACLE, OUTFLOW, WALL_BOUNDARY, MeshTrajectory
from sims.mesh import distmesh


@dataclass(frozen=True)
class Channel:
    """Geometry and flow; defaults are the DFG 2D-2 benchmark."""

    length: float = 2.2         # m
    height: float = 0.41        # m
    center: tuple[float, float] = (0.2, 0.2)
    radius: float = 0.05        # m
    mean_inflow: float = 1.0    # m/s, mean of the parabolic profile (peak 1.5x)
    viscosity: float = 1e-3     # m^2/s
    h_cylinder: float = 0.012   # m, edge length at the cylinder
    h_far: float = 0.04         # m, edge length far from it
    grading: float = 0.25       # growth of the edge length per metre from the cylinder surface
    ramp: float = 0.0           # s: the inflow rises as sin^2 from 0 over this time (0: impulsive start)

    @property
    def reynolds(self) -> float:
        return self.mean_inflow * 2 * self.radius / self.viscosity

    def distance(self, p: np.ndarray) -> np.ndarray:
        """Signed distance to the fluid region (negative inside)."""
        box = -np.minimum.reduce([p[:, 0], self.length - p[:, 0], p[:, 1], self.height - p[:, 1]])
        return np.maximum(box, self.radius - np.linalg.norm(p - np.array(self.center), axis=1))

    def size(self, p: np.ndarray) -> np.ndarray:
        surface = np.linalg.norm(p - np.array(self.center), axis=1) - self.radius
        return np.minimum(self.h_cylinder + self.grading * np.maximum(surface, 0), self.h_far)

    def inflow(self, y: np.ndarray) -> np.ndarray:
        """The parabolic profile (m/s), fully risen."""
        return 6 * self.mean_inflow * y * (self.height - y) / self.height ** 2

    def rise(self, t: float) -> float:
        """The fraction of the inflow at time ``t``: sin^2 over ``ramp`` seconds, then 1."""
        return float(np.sin(0.5 * np.pi * min(t / self.ramp, 1.0)) ** 2) if self.ramp > 0 else 1.0

    @property
    def peak_speed(self) -> float:
        """A bound on the speed in the gaps beside the cylinder: the peak inflow times the blockage."""
        return 1.5 * self.mean_inflow * self.height / (self.height - 2 * self.radius)


def saved_channel(params: dict) -> Channel:
    """A trajectory's channel from its ``trajectory_params`` metadata entry (JSON: lists for tuples)."""
    return Channel(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


def channel_mesh(channel: Channel, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``mesh_pos [N, 2]``, ``cells [C, 3]`` and MeshGraphNets ``node_type [N]`` of the channel."""
    corners = [[0, 0], [channel.length, 0], [0, channel.height], [channel.length, channel.height]]
    bbox = (0.0, 0.0, channel.length, channel.height)
    points, cells = distmesh(channel.distance, channel.size, channel.h_cylinder, bbox, corners, seed=seed)
    return points, cells, node_types(channel, points)


def node_types(channel: Channel, points: np.ndarray) -> np.ndarray:
    tol = 1e-6 * channel.length
    x, y = points[:, 0], points[:, 1]
    types = np.full(len(points), NORMAL, dtype=np.int64)
    types[np.linalg.norm(points - np.array(channel.center), axis=1) < channel.radius + tol] = OBSTACLE
    types[x < tol] = INFLOW
    types[x > channel.length - tol] = OUTFLOW
    types[(y < tol) | (y > channel.height - tol)] = WALL_BOUNDARY  # corners are walls: zero velocity
    return types


class CylinderFlow:
    """The P2/P1 discretisation of one channel mesh, stepped by ``dt``; ``velocity`` and ``pressure`` at the
    mesh vertices after each :meth:`step`."""

    def __init__(self, channel: Channel, mesh_pos: np.ndarray, cells: np.ndarray, dt: float) -> None:
        from skfem import Basis, ElementTriP1, ElementTriP2, ElementVector, MeshTri, asm

        self.channel, self.dt = channel, dt
        mesh = MeshTri(mesh_pos.T.copy(), cells.T.copy())
        self.u_basis = Basis(mesh, ElementVector(ElementTriP2()), intorder=4)
        self.p_basis = self.u_basis.with_element(ElementTriP1())
        forms = _forms()
        mass, stiffness = asm(forms["mass"], self.u_basis), asm(forms["vector_laplace"], self.u_basis)
        self.mass, self.stiffness = mass, stiffness
        self.gradient = asm(forms["gradient"], self.p_basis, self.u_basis)         # [Nu, Np]: int grad p . v
        self.divergence = asm(forms["divergence"], self.u_basis, self.p_basis)     # [Np, Nu]: int div u q
        self.convection = forms["convection"]
        self.fixed_u, self.u_wall = self._velocity_conditions(mesh_pos, cells)
        self.fixed_p = self.p_basis.get_dofs(lambda x: x[0] > channel.length - 1e-9).all()
        nu = channel.viscosity
        self.tentative = _factorise(mass / dt + 0.5 * nu * stiffness, self.fixed_u)
        self.poisson = _factorise(asm(forms["laplace"], self.p_basis), self.fixed_p)
        self.projection = _factorise(mass, self.fixed_u)
        self.time = 0.0
        self.u = np.zeros(self.u_basis.N)
        self.u[self.fixed_u] = self.u_wall * channel.rise(0.0)
        self.p = np.zeros(self.p_basis.N)
        self._previous_convection: np.ndarray | None = None
        ux, uy = self.u_basis.split_indices()
        vertices = np.arange(len(mesh_pos))
        self._vertex_u = np.column_stack([ux[vertices], uy[vertices]])

    def _velocity_conditions(self, mesh_pos: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dirichlet dofs of the velocity (all boundaries but the outflow) and their full-inflow values."""
        ch = self.channel
        fixed = self.u_basis.get_dofs(lambda x: (x[0] < 1e-9) | (x[1] < 1e-9) | (x[1] > ch.height - 1e-9)
                                      | (np.hypot(x[0] - ch.center[0], x[1] - ch.center[1]) < ch.radius + 1e-9)
                                      ).all()
        locs = self.u_basis.doflocs[:, fixed]
        ux, _ = self.u_basis.split_indices()
        is_x = np.isin(fixed, ux)
        inlet = locs[0] < 1e-9
        values = np.where(is_x & inlet, ch.inflow(locs[1]), 0.0)
        return fixed, values

    def step(self) -> None:
        from skfem import asm

        dt, nu = self.dt, self.channel.viscosity
        conv = asm(self.convection, self.u_basis, u=self.u_basis.interpolate(self.u))
        explicit = conv if self._previous_convection is None else 1.5 * conv - 0.5 * self._previous_convection
        self._previous_convection = conv
        rhs = self.mass @ self.u / dt - 0.5 * nu * (self.stiffness @ self.u) - explicit - self.gradient @ self.p
        self.time += dt
        wall = self.u_wall * self.channel.rise(self.time)
        u_star = self.tentative(rhs, self.fixed_u, wall)
        phi = self.poisson(-(self.divergence @ u_star) / dt, self.fixed_p, 0.0)
        self.u = self.projection(self.mass @ u_star - dt * (self.gradient @ phi), self.fixed_u, wall)
        self.p = self.p + phi

    @property
    def velocity(self) -> np.ndarray:
        """``[N, 2]`` m/s at the mesh vertices."""
        return self.u[self._vertex_u]

    @property
    def pressure(self) -> np.ndarray:
        """``[N]`` m^2/s^2 at the mesh vertices."""
        return self.p[: len(self._vertex_u)].copy()


def _factorise(matrix, fixed: np.ndarray):
    """``solve(rhs, fixed, values)`` for ``matrix`` with the rows of ``fixed`` dofs replaced by identity."""
    keep = np.ones(matrix.shape[0])
    keep[fixed] = 0.0
    lu = splu((diags(keep) @ matrix + diags(1.0 - keep)).tocsc())

    def solve(rhs: np.ndarray, dofs: np.ndarray, values) -> np.ndarray:
        rhs = rhs.copy()
        rhs[dofs] = values
        return lu.solve(rhs)

    return solve


def _forms() -> dict:
    from skfem import BilinearForm, LinearForm
    from skfem.helpers import ddot, div, dot, grad, mul

    return {
        "mass": BilinearForm(lambda u, v, w: dot(u, v)),
        "vector_laplace": BilinearForm(lambda u, v, w: ddot(grad(u), grad(v))),
        "laplace": BilinearForm(lambda p, q, w: dot(grad(p), grad(q))),
        "gradient": BilinearForm(lambda p, v, w: dot(grad(p), v)),
        "divergence": BilinearForm(lambda u, q, w: div(u) * q),
        "convection": LinearForm(lambda v, w: dot(mul(grad(w["u"]), w["u"]), v)),
    }


def substeps_per_frame(channel: Channel, frame_dt: float, cfl: float = 0.125) -> int:
    """Solver steps per output frame: the step is ``cfl * h_cylinder / peak_speed`` or shorter."""
    return int(np.ceil(frame_dt * channel.peak_speed / (cfl * channel.h_cylinder)))


def simulate_cylinder_flow(channel: Channel, frames: int, frame_dt: float = 0.01, warmup: float = 2.0,
                           cfl: float = 0.125, seed: int = 0) -> MeshTrajectory:
    """Meshes the channel, runs ``warmup`` seconds from rest (so shedding has set in), then records ``frames``
    frames ``frame_dt`` apart: ``velocity [T, N, 2]`` (m/s) and ``pressure [T, N, 1]`` (m^2/s^2).

    The solver step (explicit convection) comes from :func:`substeps_per_frame`."""
    mesh_pos, cells, node_type = channel_mesh(channel, seed)
    substeps = substeps_per_frame(channel, frame_dt, cfl)
    flow = CylinderFlow(channel, mesh_pos, cells, frame_dt / substeps)
    for _ in range(int(round(warmup / frame_dt)) * substeps):
        flow.step()
    velocity, pressure = np.empty((frames, len(mesh_pos), 2)), np.empty((frames, len(mesh_pos), 1))
    for frame in range(frames):
        if frame:
            for _ in range(substeps):
                flow.step()
        velocity[frame], pressure[frame, :, 0] = flow.velocity, flow.pressure
    return MeshTrajectory(mesh_pos, cells, node_type, {"velocity": velocity, "pressure": pressure})


def wake_probe(channel: Channel, mesh_pos: np.ndarray) -> int:
    """The mesh node nearest the wake axis 1.5 diameters behind the cylinder's centre, where the transverse
    velocity oscillates at the shedding frequency."""
    x, y = channel.center
    return int(np.argmin(np.linalg.norm(mesh_pos - [x + 3 * channel.radius, y], axis=1)))


STEADY_WAKE = 0.01
"""A wake whose cross-stream velocity at the probe oscillates with an RMS below this share of the mean
inflow is steady: it does not shed and has no Strouhal number. Shedding wakes of the cylinder data reach
0.1-0.4 of the inflow there; the solver's jitter on a steady one about 1e-3."""


def shedding_period(signal: np.ndarray, dt: float, min_amplitude: float = 0.0) -> float:
    """Mean time between upward zero crossings (linearly interpolated) of ``signal`` minus its mean, sampled
    every ``dt`` s; NaN with fewer than two crossings or an RMS oscillation of at most ``min_amplitude``
    (units of ``signal``; for a wake probe ``STEADY_WAKE`` x the mean inflow): a steady wake."""
    v = np.asarray(signal, dtype=float) - np.mean(signal)
    up = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
    if len(up) < 2 or np.sqrt(np.mean(v ** 2)) <= min_amplitude:
        return float("nan")
    crossings = (up - v[up] / (v[up + 1] - v[up])) * dt
    return float(np.diff(crossings).mean())


def strouhal_number(channel: Channel, period: float) -> float:
    """``f D / U``: shedding frequency times cylinder diameter over mean inflow."""
    return 2 * channel.radius / (period * channel.mean_inflow)
