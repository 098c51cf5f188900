"""A TrackML-like barrel tracker: charged particles on helices in a uniform solenoid field, multiple Coulomb
scattering at every layer crossed, Gaussian hit smearing, hit inefficiency and noise hits.

Units: mm, GeV, tesla. Geometry: coaxial cylinders around z, pixel layers at r = 32, 72, 116, 172 mm
(|z| < 500 mm) and strip layers out to r = 1020 mm (|z| < 1000 mm), as in the TrackML barrel. A particle of
charge q and transverse momentum pT moves on a circle of radius ``R = pT / (0.3 |q| B)`` (R in m for B in T)
in the transverse plane, advancing ``dz = R dphi cot(theta)``. At each layer it crosses, its direction gets
two independent Gaussian kicks with the Highland width ``theta0 = 13.6 MeV / (beta p) sqrt(x/X0)
(1 + 0.038 ln(x/X0))`` (PDG eq. 34.15), where x is the path length through the layer (thickness divided by
the cosine of the incidence angle); |p| is kept (energy loss neglected). Then the helix continues from the
crossing point with the new direction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

C_LIGHT = 0.299792458  # GeV / (T m) per unit charge: R[m] = pT[GeV] / (0.3 B[T])


@dataclass(frozen=True)
class Layer:
    radius: float            # mm
    half_length: float       # mm
    x_over_x0: float         # thickness in radiation lengths at normal incidence
    sigma_rphi: float        # mm
    sigma_z: float           # mm


def trackml_barrel() -> tuple[Layer, ...]:
    """Four pixel layers (15 um x 50 um) and six strip layers (40 um x 1 mm), ~2-3% X0 each."""
    pixels = tuple(Layer(r, 500.0, 0.02, 0.015, 0.05) for r in (32.0, 72.0, 116.0, 172.0))
    strips = tuple(Layer(r, 1000.0, 0.03, 0.04, 1.0) for r in (260.0, 360.0, 500.0, 660.0, 820.0, 1020.0))
    return pixels + strips


@dataclass(frozen=True)
class Detector:
    layers: tuple[Layer, ...] = field(default_factory=trackml_barrel)
    field_tesla: float = 2.0
    efficiency: float = 0.98           # probability that a crossing leaves a hit
    noise_per_layer: float = 0.0       # mean number of noise hits per layer and event
    scattering: bool = True
    smearing: bool = True

    def arrays(self) -> np.ndarray:
        """``[L, 5]``: radius, half length, x/X0, sigma_rphi, sigma_z."""
        return np.array([[l.radius, l.half_length, l.x_over_x0, l.sigma_rphi, l.sigma_z] for l in self.layers])


def highland(p: float | np.ndarray, x_over_x0: float | np.ndarray, mass: float = 0.13957,
             charge: float = 1.0) -> np.ndarray:
    """Width [rad] of the projected multiple-scattering angle (PDG eq. 34.15; pion mass by default)."""
    beta = p / np.sqrt(p ** 2 + mass ** 2)
    return 0.0136 / (beta * p) * abs(charge) * np.sqrt(x_over_x0) * (1 + 0.038 * np.log(x_over_x0 * charge ** 2
                                                                                          / beta ** 2))


@numba.njit(cache=True)
def _kick(ux, uy, uz, a1, a2):
    """Rotate unit vector u by small angles a1, a2 about two axes perpendicular to it."""
    # e1: perpendicular to u in the transverse plane; e2 = u x e1
    norm = math.sqrt(ux * ux + uy * uy)
    if norm < 1e-12:
        e1x, e1y, e1z = 1.0, 0.0, 0.0
    else:
        e1x, e1y, e1z = -uy / norm, ux / norm, 0.0
    e2x, e2y, e2z = uy * e1z - uz * e1y, uz * e1x - ux * e1z, ux * e1y - uy * e1x
    vx = ux + a1 * e1x + a2 * e2x
    vy = uy + a1 * e1y + a2 * e2y
    vz = uz + a1 * e1z + a2 * e2z
    n = math.sqrt(vx * vx + vy * vy + vz * vz)
    return vx / n, vy / n, vz / n


@numba.njit(cache=True)
def _propagate(vertex, momentum, charge, layers, bfield, scattering, kicks, out_pos, out_hit):
    """Follow each particle outwards through the layers; fills crossing points ``out_pos [N, L, 3]`` and
    ``out_hit [N, L]`` (True where the layer was crossed inside its length)."""
    n, n_layers = vertex.shape[0], layers.shape[0]
    for i in range(n):
        x, y, z = vertex[i, 0], vertex[i, 1], vertex[i, 2]
        px, py, pz = momentum[i, 0], momentum[i, 1], momentum[i, 2]
        p = math.sqrt(px * px + py * py + pz * pz)
        q = charge[i]
        for k in range(n_layers):
            r_layer, half, x0 = layers[k, 0], layers[k, 1], layers[k, 2]
            pt = math.sqrt(px * px + py * py)
            if pt < 1e-9:
                break
            big_r = pt / (C_LIGHT * abs(q) * bfield) * 1000.0  # mm
            ux, uy = px / pt, py / pt
            # centre of the transverse circle: q > 0 turns clockwise in B along +z
            s = 1.0 if q > 0 else -1.0
            cx, cy = x + s * big_r * uy, y - s * big_r * ux
            d = math.sqrt(cx * cx + cy * cy)
            if d + big_r < r_layer or abs(d - big_r) > r_layer or d < 1e-12:
                break  # never reaches this radius (a looper): no further layer either
            # intersections of |X| = r_layer with the circle |X - c| = R
            a = (r_layer * r_layer - big_r * big_r + d * d) / (2 * d)
            h = math.sqrt(max(r_layer * r_layer - a * a, 0.0))
            mx, my = a * cx / d, a * cy / d
            best = 1e30
            hx, hy = 0.0, 0.0
            for sign in (-1.0, 1.0):
                qx, qy = mx + sign * h * (-cy) / d, my + sign * h * cx / d
                # turning angle from (x, y) to (qx, qy) along the motion
                a0 = math.atan2(y - cy, x - cx)
                a1 = math.atan2(qy - cy, qx - cx)
                dphi = (a0 - a1) * s  # clockwise for s = +1
                dphi = dphi % (2 * math.pi)
                if 1e-9 < dphi < best:
                    best, hx, hy = dphi, qx, qy
            if best > math.pi:
                break  # only reached after the turning point: the particle curls back inside
            z_new = z + big_r * best * pz / pt
            # direction at the crossing: rotate (ux, uy) by -s * best
            c, sn = math.cos(-s * best), math.sin(-s * best)
            ux, uy = ux * c - uy * sn, ux * sn + uy * c
            x, y, z = hx, hy, z_new
            px, py = pt * ux, pt * uy
            out_pos[i, k, 0], out_pos[i, k, 1], out_pos[i, k, 2] = x, y, z
            if abs(z) > half:
                continue  # passes beyond this layer's end: no hit, no material
            out_hit[i, k] = True
            if scattering and x0 > 0:
                dx, dy, dz = px / p, py / p, pz / p
                cos_inc = abs(dx * x + dy * y) / r_layer
                thickness = x0 / max(cos_inc, 1e-3)
                beta = p / math.sqrt(p * p + 0.13957 * 0.13957)
                theta0 = 0.0136 / (beta * p) * abs(q) * math.sqrt(thickness) * (
                    1 + 0.038 * math.log(thickness * q * q / (beta * beta)))
                dx, dy, dz = _kick(dx, dy, dz, theta0 * kicks[i, k, 0], theta0 * kicks[i, k, 1])
                px, py, pz = p * dx, p * dy, p * dz


@dataclass(frozen=True)
class Particles:
    """Truth particles of one event: ``vertex [N, 3]`` mm, ``momentum [N, 3]`` GeV, ``charge [N]``."""

    vertex: np.ndarray
    momentum: np.ndarray
    charge: np.ndarray

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.momentum[:, 0], self.momentum[:, 1])

    @property
    def eta(self) -> np.ndarray:
        return np.arcsinh(self.momentum[:, 2] / self.pt)

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.momentum[:, 1], self.momentum[:, 0])


def sample_particles(n: int, rng: np.random.Generator, pt_min: float = 0.5, pt_power: float = 2.0,
                     eta_max: float = 2.5, sigma_z: float = 50.0) -> Particles:
    """Prompt particles: pT from a falling power law ``dN/dpT ~ pT^-(1 + pt_power)`` above ``pt_min``,
    eta uniform in ``|eta| < eta_max``, phi uniform, charge +-1, vertex at (0, 0, N(0, sigma_z))."""
    pt = pt_min * rng.random(n) ** (-1.0 / pt_power)
    eta = rng.uniform(-eta_max, eta_max, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    momentum = np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)])
    vertex = np.column_stack([np.zeros(n), np.zeros(n), rng.normal(0.0, sigma_z, n)])
    return Particles(vertex, momentum, rng.choice([-1.0, 1.0], n))


@dataclass(frozen=True)
class Hits:
    """Measured hits of one event, ordered by particle then layer; ``particle_id`` is -1 for noise."""

    position: np.ndarray     # [H, 3] mm
    layer: np.ndarray        # [H]
    particle_id: np.ndarray  # [H]


def simulate_event(particles: Particles, detector: Detector, rng: np.random.Generator) -> Hits:
    """Propagate, scatter, then measure: smear in r-phi and z, drop hits at the inefficiency, add noise."""
    layers = detector.arrays()
    n, n_layers = len(particles.charge), len(layers)
    pos = np.zeros((n, n_layers, 3))
    crossed = np.zeros((n, n_layers), dtype=np.bool_)
    kicks = rng.standard_normal((n, n_layers, 2))
    _propagate(particles.vertex.astype(np.float64), particles.momentum.astype(np.float64),
               particles.charge.astype(np.float64), layers, detector.field_tesla, detector.scattering, kicks, pos,
               crossed)
    crossed &= rng.random((n, n_layers)) < detector.efficiency
    pid, layer = np.nonzero(crossed)
    xyz = pos[pid, layer]
    if detector.smearing:
        r = layers[layer, 0]
        phi = np.arctan2(xyz[:, 1], xyz[:, 0]) + rng.normal(0.0, 1.0, len(pid)) * layers[layer, 3] / r
        xyz = np.column_stack([r * np.cos(phi), r * np.sin(phi),
                               xyz[:, 2] + rng.normal(0.0, 1.0, len(pid)) * layers[layer, 4]])
    noise = rng.poisson(detector.noise_per_layer, n_layers)
    noise_layer = np.repeat(np.arange(n_layers), noise)
    r = layers[noise_layer, 0]
    phi = rng.uniform(-np.pi, np.pi, len(noise_layer))
    noise_xyz = np.column_stack([r * np.cos(phi), r * np.sin(phi),
                                 rng.uniform(-1, 1, len(noise_layer)) * layers[noise_layer, 1]])
    return Hits(np.concatenate([xyz, noise_xyz]), np.concatenate([layer, noise_layer]),
                np.concatenate([pid, np.full(len(noise_layer), -1)]))
