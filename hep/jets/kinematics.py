"""Collider coordinates of momenta: pseudorapidity, azimuth and the distance between directions."""
from __future__ import annotations

import numpy as np


def eta_phi(px, py, pz):
    """Pseudorapidity and azimuth of momenta (arrays of any shape; eta finite along the beam)."""
    pt = np.hypot(px, py)
    return np.arcsinh(pz / np.maximum(pt, 1e-12)), np.arctan2(py, px)


def delta_r(eta1, phi1, eta2, phi2):
    """``sqrt(d_eta^2 + d_phi^2)`` with d_phi wrapped to [-pi, pi)."""
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)
