"""Electromagnetic showers by the GFlash parameterisation (Grindhammer & Peters, hep-ex/0001020), in a
homogeneous medium, deposited into a cylindrical voxel geometry.

Per shower: the longitudinal energy profile is a gamma distribution in depth t [X0],
``dE/dt = E (beta t)^(alpha - 1) beta exp(-beta t) / Gamma(alpha)``, maximum at ``T = (alpha - 1) / beta``,
with ``(ln T, ln alpha)`` drawn from a correlated Gaussian around the homogeneous-medium means (eqs. of
section 2.1). The energy of each layer is carried by "spots" whose number follows their own, slightly shorter
gamma profile (N_spot = 93 ln Z E^0.876, E in GeV); each spot lands at a radius r [Moliere radii] drawn from
the two-component radial profile ``f(r) = p f_C(r) + (1 - p) f_T(r)``, ``f_i(r) = 2 r R_i^2 / (r^2 + R_i^2)^2``
evaluated at the layer's depth ``tau = t / T``, and at a uniform azimuth. Spots are binned exactly by
drawing their counts per voxel from a multinomial with the voxel's probability (the integral of f over the
ring, divided by the number of azimuthal bins), so no spot list is ever materialised.

Sampling: with ``sampling=True`` each spot carries ``E_layer / <n_layer>`` and the spot count is Poisson,
so the visible energy fluctuates as 1/sqrt(N_spot) (the GFlash model of sampling fluctuations); with
``sampling=False`` the layer energy is shared exactly among the drawn spots and deposits plus leakage
equal the incident energy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc

from datasets.showers import CaloGeometry


@dataclass(frozen=True)
class Material:
    """A homogeneous absorber: atomic number, critical energy [MeV], radiation length and Moliere radius [mm]."""

    name: str
    Z: float
    critical_energy: float
    X0: float
    moliere_radius: float


TUNGSTEN = Material("tungsten", Z=74.0, critical_energy=7.97, X0=3.504, moliere_radius=9.327)


@dataclass(frozen=True)
class ShowerParameters:
    """Per-shower longitudinal parameters: ``T`` (depth of maximum [X0]) and shape ``alpha``, for the energy
    profile and for the spot profile."""

    T: np.ndarray
    alpha: np.ndarray
    T_spot: np.ndarray
    alpha_spot: np.ndarray


def mean_longitudinal(energy_mev: np.ndarray, material: Material) -> tuple[np.ndarray, np.ndarray]:
    """Average profile of the homogeneous medium: ``T_hom = ln y - 0.858`` and
    ``alpha_hom = 0.21 + (0.492 + 2.38 / Z) ln y``, with ``y = E / E_c``."""
    ln_y = np.log(energy_mev / material.critical_energy)
    return ln_y - 0.858, 0.21 + (0.492 + 2.38 / material.Z) * ln_y


def sample_parameters(energy_mev: np.ndarray, material: Material, rng: np.random.Generator,
                      fluctuations: bool = True) -> ShowerParameters:
    """Draw ``(ln T, ln alpha)`` per shower from GFlash's correlated Gaussian (or take the mean profile)."""
    ln_y = np.log(energy_mev / material.critical_energy)
    Z = material.Z
    mean_ln_t = np.log(ln_y - 0.812)
    mean_ln_a = np.log(0.81 + (0.458 + 2.26 / Z) * ln_y)
    if fluctuations:
        sigma_t = 1.0 / (-1.4 + 1.26 * ln_y)
        sigma_a = 1.0 / (-0.58 + 0.86 * ln_y)
        rho = 0.705 - 0.023 * ln_y
        z1, z2 = rng.standard_normal((2,) + ln_y.shape)
        ln_t = mean_ln_t + sigma_t * z1
        ln_a = mean_ln_a + sigma_a * (rho * z1 + np.sqrt(1 - rho ** 2) * z2)
        T, alpha = np.exp(ln_t), np.exp(ln_a)
    else:
        T, alpha = mean_longitudinal(energy_mev, material)
    alpha = np.maximum(alpha, 1.0 + 1e-6)  # a profile with a maximum at T > 0; the spot profile's too (its
    # alpha is 0.89 alpha in tungsten: a low fluctuation of alpha would otherwise give a negative beta)
    alpha_spot = np.maximum(alpha * (0.639 + 0.00334 * Z), 1.0 + 1e-6)
    return ShowerParameters(T, alpha, T * (0.698 + 0.00212 * Z), alpha_spot)


def gamma_fractions(T: np.ndarray, alpha: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Fraction of a gamma profile in each depth interval ``[N, len(edges) - 1]``, beta = (alpha - 1) / T."""
    beta = (alpha - 1) / T
    cdf = gammainc(alpha[:, None], beta[:, None] * edges[None, :])
    return np.diff(cdf, axis=1)


def radial_parameters(tau: np.ndarray, energy_gev: np.ndarray, Z: float) -> tuple[np.ndarray, ...]:
    """``(R_C, R_T, p)`` of the radial profile at scaled depth ``tau = t / T`` (homogeneous media)."""
    ln_e = np.log(energy_gev)
    r_core = 0.0251 + 0.00319 * ln_e + (0.1162 - 0.000381 * Z) * tau
    k1, k2, k3, k4 = 0.659 - 0.00309 * Z, 0.645, -2.59, 0.3585 + 0.0412 * ln_e
    r_tail = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    p1, p2, p3 = 2.632 - 0.00094 * Z, 0.401 + 0.00187 * Z, 1.313 - 0.0686 * ln_e
    u = (p2 - tau) / p3
    p = np.clip(p1 * np.exp(u - np.exp(u)), 0.0, 1.0)
    return r_core, r_tail, p


def radial_cdf(r: np.ndarray, r_core: np.ndarray, r_tail: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Fraction of the energy within radius r: ``p r^2/(r^2 + R_C^2) + (1 - p) r^2/(r^2 + R_T^2)``."""
    r2 = r ** 2
    return p * r2 / (r2 + r_core ** 2) + (1 - p) * r2 / (r2 + r_tail ** 2)


@dataclass(frozen=True)
class Showers:
    """Generated showers ``[N, n_voxels]`` [MeV] and what left the geometry ``[N]`` [MeV]."""

    energies: np.ndarray
    deposits: np.ndarray
    leaked: np.ndarray


def simulate_showers(energy_mev: np.ndarray, geometry: CaloGeometry = CaloGeometry(),
                     material: Material = TUNGSTEN, rng: np.random.Generator | None = None,
                     sampling: bool = True, fluctuations: bool = True) -> Showers:
    """GFlash showers of electrons entering along the cylinder axis with energies ``[N]`` [MeV]."""
    energy_mev = np.asarray(energy_mev, dtype=np.float64).ravel()
    if not (energy_mev > 10 * material.critical_energy).all():
        raise ValueError(f"GFlash needs incident energies well above the critical energy "
                         f"({material.critical_energy} MeV); got min {energy_mev.min():g} MeV")
    rng = rng or np.random.default_rng()
    n = len(energy_mev)
    params = sample_parameters(energy_mev, material, rng, fluctuations)
    z_edges = geometry.layer_edges()
    layer_energy = energy_mev[:, None] * gamma_fractions(params.T, params.alpha, z_edges)
    spot_mean = 93 * np.log(material.Z) * (energy_mev[:, None] / 1000) ** 0.876 \
        * gamma_fractions(params.T_spot, params.alpha_spot, z_edges)
    spots = rng.poisson(spot_mean)
    if sampling:
        spot_energy = np.divide(layer_energy, spot_mean, out=np.zeros_like(layer_energy), where=spot_mean > 0)
    else:
        spots = np.maximum(spots, 1)
        spot_energy = layer_energy / spots

    tau = 0.5 * (z_edges[1:] + z_edges[:-1])[None, :] / params.T[:, None]
    r_core, r_tail, p = radial_parameters(tau, energy_mev[:, None] / 1000, material.Z)
    cdf = radial_cdf(geometry.radial_edges()[None, None, :], r_core[..., None], r_tail[..., None], p[..., None])
    ring = np.diff(cdf, axis=-1)                                     # [N, L, R]
    voxel = np.repeat(ring[:, :, None, :] / geometry.n_alpha, geometry.n_alpha, axis=2).reshape(n, len(tau[0]), -1)
    outside = np.clip(1 - voxel.sum(-1, keepdims=True), 0.0, 1.0)
    pvals = np.concatenate([voxel, outside], axis=-1)
    pvals /= pvals.sum(-1, keepdims=True)
    counts = rng.multinomial(spots, pvals)                           # [N, L, V_layer + 1]
    deposits = counts * spot_energy[..., None]
    tail = energy_mev * (1 - gammainc(params.alpha, (params.alpha - 1) / params.T * z_edges[-1]))
    leaked = deposits[..., -1].sum(1) + tail
    return Showers(energy_mev, deposits[..., :-1].reshape(n, -1).astype(np.float32), leaked)
