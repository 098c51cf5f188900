"""Minimum-bias pile-up from Pythia 8 (optional ``gen`` extra: ``pythia8mc==8.317.2``).

Each detector event overlays a Poisson number of 14 TeV non-diffractive pp interactions, each at its own
vertex z ~ N(0, sigma_z) on the beam line; the tracker sees their charged final-state particles within the
acceptance. Pythia runs in batches (``Pythia.nextBatch``, awkward arrays), never particle by particle.
"""
from __future__ import annotations

import awkward as ak
import numpy as np

from gnn.optional import require
from hep.tracking.detector import Particles


class MinimumBias:
    """``next(pileup, rng) -> Particles`` of one bunch crossing."""

    def __init__(self, seed: int = 0, energy_gev: float = 14_000.0, pt_min: float = 0.5, eta_max: float = 2.5,
                 sigma_z: float = 50.0, batch: int = 200) -> None:
        pythia8mc = require("pythia8mc")
        self.pythia = pythia8mc.Pythia("", False)
        for setting in (f"Beams:eCM = {energy_gev}", "SoftQCD:nonDiffractive = on", "Random:setSeed = on",
                        f"Random:seed = {seed % 900_000_000 + 1}", "Print:quiet = on"):
            self.pythia.readString(setting)
        if not self.pythia.init():
            raise RuntimeError("Pythia failed to initialise minimum-bias pp collisions")
        self.pt_min, self.eta_max, self.sigma_z, self.batch = pt_min, eta_max, sigma_z, batch
        self._charges: dict[int, float] = {}
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def _charge(self, pdg_ids: np.ndarray) -> np.ndarray:
        for pdg in np.unique(pdg_ids):
            if int(pdg) not in self._charges:
                self._charges[int(pdg)] = float(self.pythia.particleData.charge(int(pdg)))
        return np.array([self._charges[int(i)] for i in pdg_ids])

    def _interaction(self) -> tuple[np.ndarray, np.ndarray]:
        """Momenta [N, 3] GeV and charges of one interaction's charged particles in the acceptance."""
        if not self._pending:
            events = self.pythia.nextBatch(self.batch)
            final = events.prt[events.prt.status > 0]
            for particles in final:
                p = np.column_stack([ak.to_numpy(particles.p[k]) for k in ("px", "py", "pz")])
                self._pending.append((p, self._charge(ak.to_numpy(particles.id))))
            self._pending.reverse()
        momentum, charge = self._pending.pop()
        pt = np.hypot(momentum[:, 0], momentum[:, 1])
        eta = np.arcsinh(momentum[:, 2] / np.maximum(pt, 1e-12))
        keep = (charge != 0) & (pt > self.pt_min) & (np.abs(eta) < self.eta_max)
        return momentum[keep], charge[keep]

    def next(self, pileup: float, rng: np.random.Generator) -> Particles:
        interactions = [self._interaction() for _ in range(max(1, rng.poisson(pileup)))]
        vertices = [np.column_stack([np.zeros(len(c)), np.zeros(len(c)), np.full(len(c), rng.normal(0, self.sigma_z))])
                    for _, c in interactions]
        return Particles(np.concatenate(vertices), np.concatenate([m for m, _ in interactions]),
                         np.concatenate([c for _, c in interactions]))
