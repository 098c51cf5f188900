"""Displaced tracks and secondary vertices of the generated jets: the second modality of a jet (issue 24).

Pythia 8 decays every unstable particle and sets each product's production vertex (``vProd``, mm, the hard
interaction at the origin): a b hadron flies ~0.45 mm x beta-gamma before it decays, its products start
there. From that record, at particle level (no detector simulation, no magnetic field):

- **tracks**: every charged constituent gets a transverse and longitudinal impact parameter of a straight
  line from its production vertex along its momentum (the error against a helix in a 2 T field is below a
  micrometre for pT > 1 GeV and mm-scale displacements), smeared by Gaussians of width
  ``sigma = a + b / pT`` (`TrackResolution`, the form of LHC trackers' resolution curves); neutral
  constituents get zeros, as in JetClass.
- **secondary vertices**: the decay point of every weakly decaying b or c hadron (species mean lifetime
  above 1 um) whose flight direction lies inside the jet and which gives the jet at least two charged
  constituents (a vertex fit needs two tracks), with its position smeared, its track multiplicity, and the
  invariant mass, pT and direction of those tracks. A b -> c cascade gives two vertices: a track belongs to
  the nearest long-lived particle among its ancestors.
"""
from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from hep.jets.kinematics import delta_r, eta_phi

LONG_LIVED_MM = 1e-3  # c*tau0 [mm] above which a decay is displaced (pi0: 2.6e-5, D0: 0.12, B+: 0.49)
MIN_SV_TRACKS = 2


@dataclass(frozen=True)
class TrackResolution:
    """Gaussian resolutions [mm]: impact parameters ``a + b / pT`` (pT in GeV), vertex positions flat.

    The defaults are of the order of an LHC silicon tracker with a pixel layer at ~3 cm (d0: 10 um at
    high pT, ~80 um at 1 GeV; z0 about three times worse than d0 at high pT).
    """

    d0_a: float = 0.010
    d0_b: float = 0.070
    z0_a: float = 0.030
    z0_b: float = 0.150
    sv_xy: float = 0.030
    sv_z: float = 0.060

    def d0(self, pt: np.ndarray) -> np.ndarray:
        return self.d0_a + self.d0_b / pt

    def z0(self, pt: np.ndarray) -> np.ndarray:
        return self.z0_a + self.z0_b / pt


def impact_parameters(vertex: np.ndarray, momentum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed transverse and longitudinal impact parameters of straight tracks to the beam line.

    Args:
        vertex: ``[n, 3]`` production points [mm].
        momentum: ``[n, 3]`` momenta (any unit).
    Returns:
        ``d0 = (x p_y - y p_x) / p_T`` and ``z0``, the z of the point of closest approach [mm], each ``[n]``.
    """
    x, y, z = vertex.T
    px, py, pz = momentum.T
    pt2 = px ** 2 + py ** 2
    return (x * py - y * px) / np.sqrt(pt2), z - (x * px + y * py) * pz / pt2


def flavour(ids: np.ndarray) -> np.ndarray:
    """Heaviest quark of each hadron from its PDG code: 5 (b), 4 (c) or 0 (light, leptons, bosons, partons)."""
    code = np.abs(ids) % 10_000
    digits = np.stack([code // 10 % 10, code // 100 % 10, code // 1000 % 10])
    heavy = np.where((digits == 5).any(0), 5, np.where((digits == 4).any(0), 4, 0))
    return np.where(code >= 100, heavy, 0)


def nearest_long_lived(mother: np.ndarray, long_lived: np.ndarray) -> np.ndarray:
    """Index of each particle's nearest long-lived ancestor, following first mothers; -1 if it has none.

    Args:
        mother: ``[n]`` first mother of each particle as an index into the same array, -1 for none.
        long_lived: ``[n]`` whether each particle is a displaced decayer.
    """
    origin = np.full(len(mother), -1)
    ancestor = mother.copy()
    active = ancestor >= 0
    while active.any():
        hit = active & long_lived[np.where(active, ancestor, 0)]
        origin[hit] = ancestor[hit]
        active &= ~hit
        ancestor = np.where(active, mother[np.where(active, ancestor, 0)], -1)
        active &= ancestor >= 0
    return origin


@dataclass(frozen=True)
class DecayRecord:
    """One batch of Pythia events, flattened: per particle the fields the vertex information needs."""

    event: np.ndarray  # [n] event index
    momentum: np.ndarray  # [n, 4] px, py, pz, E [GeV]
    vertex: np.ndarray  # [n, 3] production point [mm]
    charge: np.ndarray  # [n] [e]
    flavour: np.ndarray  # [n] 5, 4 or 0
    decay_vertex: np.ndarray  # [n, 3] production point of the first daughter [mm] (NaN if it did not decay)
    origin: np.ndarray  # [n] flat index of the nearest long-lived ancestor, -1 for prompt particles
    long_lived: np.ndarray  # [n] displaced decayer that decayed
    offsets: np.ndarray  # [events + 1] first flat index of each event

    @classmethod
    def from_pythia(cls, prt: ak.Array, particle_data) -> "DecayRecord":
        """Flatten ``pythia.nextBatch(...).prt`` with species charge and lifetime from ``pythia.particleData``."""
        counts = ak.to_numpy(ak.num(prt.id))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        event = np.repeat(np.arange(len(counts)), counts)
        ids = ak.to_numpy(ak.flatten(prt.id))
        species, inverse = np.unique(ids, return_inverse=True)
        charge = np.array([particle_data.charge(int(i)) for i in species])[inverse]
        tau0 = np.array([particle_data.tau0(int(i)) for i in species])[inverse]
        p = prt.p
        momentum = np.column_stack([ak.to_numpy(ak.flatten(p[k])) for k in ("px", "py", "pz", "e")])
        v = prt.vProd
        vertex = np.column_stack([ak.to_numpy(ak.flatten(ak.fill_none(v[k], 0.0))) for k in ("px", "py", "pz")])

        def flat_index(local: ak.Array) -> np.ndarray:  # Pythia's 0 is the event-record header: "none"
            local = ak.to_numpy(ak.flatten(local))
            return np.where(local > 0, local + offsets[event], -1)

        mother, daughter = flat_index(prt.mother1), flat_index(prt.daughter1)
        decayed = (ak.to_numpy(ak.flatten(prt.status)) < 0) & (daughter >= 0)
        decay_vertex = np.where(decayed[:, None], vertex[np.maximum(daughter, 0)], np.nan)
        long_lived = decayed & (tau0 > LONG_LIVED_MM)
        return cls(event, momentum, vertex, charge, flavour(ids), decay_vertex, nearest_long_lived(mother, long_lived),
                   long_lived, offsets)


def track_branches(record: DecayRecord, index: np.ndarray, resolution: TrackResolution,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per constituent (flat ``index`` into ``record``): charge, true production point and smeared impact
    parameters with their resolutions, JetClass's names (``part_d0val``, ``part_dzval``, ...), zero for neutrals."""
    momentum, vertex, charge = record.momentum[index], record.vertex[index], record.charge[index]
    charged = charge != 0
    pt = np.hypot(momentum[:, 0], momentum[:, 1])
    out = {"part_charge": charge, "part_vx": vertex[:, 0], "part_vy": vertex[:, 1], "part_vz": vertex[:, 2],
           **{key: np.zeros(len(index)) for key in ("part_d0val", "part_d0err", "part_dzval", "part_dzerr")}}
    d0, z0 = impact_parameters(vertex[charged], momentum[charged, :3])
    d0_err, z0_err = resolution.d0(pt[charged]), resolution.z0(pt[charged])
    noise = rng.normal(size=(2, len(d0)))
    out["part_d0val"][charged], out["part_d0err"][charged] = d0 + noise[0] * d0_err, d0_err
    out["part_dzval"][charged], out["part_dzerr"][charged] = z0 + noise[1] * z0_err, z0_err
    return out


def secondary_vertices(record: DecayRecord, jet_event: np.ndarray, jet_momentum: np.ndarray,
                       constituents: list[np.ndarray], radius: float, resolution: TrackResolution,
                       rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """The heavy-flavour secondary vertices of each jet, sorted by decreasing pT of their tracks.

    Args:
        record: the batch's particles.
        jet_event: ``[jets]`` event of each jet.
        jet_momentum: ``[jets, 3]`` jet momenta.
        constituents: per jet, flat indices of its constituents into ``record``.
        radius: the jet radius: a hadron belongs to the jet if its flight direction is within it.
    Returns:
        per jet, ``sv_x, sv_y, sv_z`` (smeared [mm]), ``sv_ntracks``, ``sv_mass``, ``sv_pt`` [GeV], ``sv_eta``,
        ``sv_phi`` (of the tracks' sum) and ``sv_flavour`` (truth: 5 or 4), one entry per vertex.
    """
    heavy = np.nonzero(record.long_lived & (record.flavour > 0))[0]
    hadron_eta, hadron_phi = eta_phi(*record.momentum[heavy, :3].T)
    jet_eta, jet_phi = eta_phi(*jet_momentum.T)
    out = []
    for j, members in enumerate(constituents):
        inside = heavy[(record.event[heavy] == jet_event[j])
                       & (delta_r(hadron_eta, hadron_phi, jet_eta[j], jet_phi[j]) < radius)]
        tracks = members[record.charge[members] != 0]
        rows = []
        for hadron in inside:
            own = tracks[record.origin[tracks] == hadron]
            if len(own) >= MIN_SV_TRACKS:
                p = record.momentum[own].sum(0)
                rows.append((hadron, len(own), np.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0)), p))
        rows.sort(key=lambda row: -np.hypot(row[3][0], row[3][1]))
        position = record.decay_vertex[[r[0] for r in rows]].reshape(-1, 3)
        smear = rng.normal(size=position.shape) * np.array([resolution.sv_xy, resolution.sv_xy, resolution.sv_z])
        p = np.array([r[3] for r in rows]).reshape(-1, 4)
        eta, phi = eta_phi(*p[:, :3].T)
        out.append({"sv_x": position[:, 0] + smear[:, 0], "sv_y": position[:, 1] + smear[:, 1],
                    "sv_z": position[:, 2] + smear[:, 2], "sv_ntracks": np.array([r[1] for r in rows], np.int32),
                    "sv_mass": np.array([r[2] for r in rows]), "sv_pt": np.hypot(p[:, 0], p[:, 1]),
                    "sv_eta": eta, "sv_phi": phi, "sv_flavour": record.flavour[[r[0] for r in rows]].astype(np.int32)})
    return out
