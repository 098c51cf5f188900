"""Top-tagging jets with the recipe of the Top Quark Tagging Reference Dataset (Kasieczka et al. 2019,
arXiv:1902.09914), at particle level (no detector simulation): 14 TeV pp, hadronic ttbar (signal) against
QCD dijets (background) from Pythia 8 with MPI off, anti-kT R = 0.8 jets of visible final-state particles
with 550 < pT < 650 GeV and |eta| < 2, the leading 200 constituents. A top jet must contain its top quark and
the top's b, q and q' within dR < 0.8 of the jet axis. Jet substructure (tau_1..3 with OnePass kT axes,
beta = 1; soft-drop mass with z_cut = 0.1, beta = 0) comes from fastjet, computed once here.

Each charged constituent also gets smeared impact parameters, and each jet the secondary vertices of its b
and c hadrons (`hep.jets.vertices`): the tracking modality of the jet.

Pythia runs in batches (``nextBatch``, awkward arrays) and fastjet clusters whole batches; the Python loops
are over events for the truth matching and over jets for their vertices. Requires the ``gen`` extra
(pythia8mc, fastjet).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
from tqdm.auto import tqdm

from datasets.parallel import map_tasks
from datasets.registry import DatasetSpec, require_at_least
from datasets.root import RootWriter
from gnn.optional import require
from hep.jets.kinematics import delta_r, eta_phi
from hep.jets.vertices import DecayRecord, TrackResolution, secondary_vertices, track_branches

PROCESSES = {
    "top": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
    "qcd": ("HardQCD:all = on",),
}
NEUTRINOS = (12, 14, 16)


@dataclass(frozen=True)
class JetSelection:
    pt_min: float = 550.0
    pt_max: float = 650.0
    eta_max: float = 2.0
    radius: float = 0.8
    max_constituents: int = 200
    pt_hat_min: float = 475.0


def make_pythia(process: str, seed: int, selection: JetSelection = JetSelection()):
    """A 14 TeV Pythia 8 generator for ``top`` or ``qcd``, MPI off, seeded."""
    if process not in PROCESSES:
        raise ValueError(f"process must be one of {', '.join(PROCESSES)}, got {process!r}")
    pythia = require("pythia8mc").Pythia("", False)
    for setting in ("Beams:eCM = 14000.", f"PhaseSpace:pTHatMin = {selection.pt_hat_min}", "PartonLevel:MPI = off",
                    "Print:quiet = on", "Random:setSeed = on", f"Random:seed = {seed % 900_000_000 + 1}",
                    *PROCESSES[process]):
        pythia.readString(setting)
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise the {process} process")
    return pythia


def top_decays(prt: ak.Array) -> list[list[np.ndarray]]:
    """Per event, per top: ``(eta, phi) [4, 2]`` of the top, its b and the W's two quarks (hard-process record)."""
    ids, status, mother = prt.id, prt.status, prt.mother1
    out = []
    for e in range(len(prt)):
        i, s, m = ak.to_numpy(ids[e]), ak.to_numpy(status[e]), ak.to_numpy(mother[e])
        p = np.column_stack([ak.to_numpy(prt.p[k][e]) for k in ("px", "py", "pz")])
        decay = s == -23
        tops = []
        for b in np.nonzero(decay & (np.abs(i) == 5) & (np.abs(i[m]) == 6))[0]:
            top = m[b]
            quarks = np.nonzero(decay & (np.abs(i) <= 5) & (np.abs(i[m]) == 24) & (m[m] == top))[0]
            if len(quarks) == 2:
                members = np.array([top, b, *quarks])
                tops.append(np.column_stack(eta_phi(*p[members].T)))
        out.append(tops)
    return out


def cluster(prt: ak.Array, selection: JetSelection) -> tuple[ak.Array, ak.Array]:
    """Anti-kT jets (pT-sorted) of visible final-state particles, and per jet the indices of its leading
    constituents (decreasing pT) into the batch's flattened event record (``[events, jets, var]``)."""
    fastjet = require("fastjet")
    ids = np.abs(prt.id)
    visible = (prt.status > 0) & (ids != NEUTRINOS[0]) & (ids != NEUTRINOS[1]) & (ids != NEUTRINOS[2])
    offsets = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(prt.id)))[:-1]])
    where = (ak.local_index(prt.id) + offsets)[visible]
    p = prt.p[visible]
    particles = ak.zip({"px": p.px, "py": p.py, "pz": p.pz, "E": p.e})
    sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, selection.radius))
    jets = sequence.inclusive_jets(min_pt=selection.pt_min)
    index = sequence.constituent_index(min_pt=selection.pt_min)
    order = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)  # inclusive_jets are not sorted
    jets, index = jets[order], index[order]
    per_jet = ak.flatten(ak.num(index, axis=2))
    members = ak.unflatten(where[ak.flatten(index, axis=2)], per_jet, axis=1)
    pt = ak.flatten(np.hypot(prt.p.px, prt.p.py))
    by_pt = ak.argsort(ak.unflatten(pt[ak.flatten(members, axis=None)], per_jet), axis=1, ascending=False)
    by_pt = ak.unflatten(by_pt, ak.num(jets), axis=0)
    return jets, members[by_pt][:, :, :selection.max_constituents]


def substructure(constituents: ak.Array, radius: float = 0.8) -> dict[str, np.ndarray]:
    """tau_1..3 (normalised measure, beta = 1, OnePass kT axes) and the soft-drop mass of flat jets."""
    fastjet = require("fastjet")
    kt = fastjet.ClusterSequence(constituents, fastjet.JetDefinition(fastjet.kt_algorithm, radius))
    taus = ak.to_numpy(kt.njettiness(njets=(1, 2, 3), R0=radius))
    ca = fastjet.ClusterSequence(constituents, fastjet.JetDefinition(fastjet.cambridge_algorithm, radius))
    groomed = ca.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=radius)
    return {"jet_tau1": taus[:, 0], "jet_tau2": taus[:, 1], "jet_tau3": taus[:, 2],
            "jet_sdmass": ak.to_numpy(groomed.msoftdrop)}


def select_jets(prt: ak.Array, process: str, selection: JetSelection) -> tuple[ak.Array, ak.Array]:
    """Flat jets in the pT/eta window (top: truth-matched ones only) and their constituents' flat indices."""
    jets, members = cluster(prt, selection)
    pt = np.hypot(jets.px, jets.py)
    eta, phi = eta_phi(jets.px, jets.py, jets.pz)
    keep = (pt > selection.pt_min) & (pt < selection.pt_max) & (np.abs(eta) < selection.eta_max)
    if process == "top":
        decays = top_decays(prt)
        matched = []
        for e, tops in enumerate(decays):
            je, jp = ak.to_numpy(eta[e]), ak.to_numpy(phi[e])
            hit = np.zeros(len(je), bool)
            for top in tops:
                hit |= (delta_r(je[:, None], jp[:, None], top[None, :, 0], top[None, :, 1]) < selection.radius).all(1)
            matched.append(hit)
        keep = keep & ak.Array(matched)
    return ak.flatten(jets[keep]), ak.flatten(members[keep], axis=1)


def jet_branches(jets: ak.Array, members: ak.Array, record: DecayRecord, label: int, radius: float,
                 resolution: TrackResolution, rng: np.random.Generator) -> dict[str, object]:
    """The ROOT branches of a set of jets: jet-level float64 [GeV]; jagged float32 ``part_*`` [GeV, e, mm]
    (counter ``jet_nparticles``): four-momenta, charge, true production point, smeared impact parameters;
    jagged ``sv_*`` (counter ``jet_nsv``): heavy-flavour secondary vertices (`hep.jets.vertices`)."""
    px, py, pz, e = (ak.to_numpy(jets[k]) for k in ("px", "py", "pz", "E"))
    eta, phi = eta_phi(px, py, pz)
    counts, flat = ak.to_numpy(ak.num(members)), ak.to_numpy(ak.flatten(members))
    momentum = record.momentum[flat]
    constituents = ak.unflatten(ak.zip({k: momentum[:, i] for i, k in enumerate(("px", "py", "pz", "E"))}), counts)
    per_particle = {f"part_{k}": momentum[:, i] for i, k in enumerate(("px", "py", "pz", "energy"))}
    per_particle |= track_branches(record, flat, resolution, rng)
    starts = np.concatenate([[0], np.cumsum(counts)])
    vertices = secondary_vertices(record, record.event[flat[starts[:-1]]], np.column_stack([px, py, pz]),
                                  np.split(flat, starts[1:-1]), radius, resolution, rng)
    nsv = np.array([len(v["sv_x"]) for v in vertices])
    per_vertex = {key: ak.unflatten(np.concatenate([v[key] for v in vertices]), nsv) for key in vertices[0]}
    return {"jet_pt": np.hypot(px, py), "jet_eta": eta, "jet_phi": phi, "jet_energy": e,
            "jet_mass": np.sqrt(np.maximum(e ** 2 - px ** 2 - py ** 2 - pz ** 2, 0.0)),
            "label": np.full(len(px), label, dtype=np.int32), **substructure(constituents, radius),
            **{key: ak.unflatten(value.astype(np.float32), counts) for key, value in per_particle.items()},  # halves
            **{key: value if key in ("sv_ntracks", "sv_flavour") else ak.values_astype(value, np.float32)
               for key, value in per_vertex.items()}}


def generate_jets(out_dir: str | Path, seed: int = 0, jets: int = 2000, chunk: int = 1000, batch: int = 200,
                  workers: int = 1, progress: bool = True) -> list[Path]:
    """Write balanced chunks ``jets_{k:04d}.root`` (``chunk`` jets each, half top, half QCD, shuffled) until
    ``jets`` are written; existing chunks are kept, so an interrupted run resumes where it stopped. Each chunk
    is seeded by its index, so ``workers`` processes write the same files as one."""
    require_at_least(jets=(jets, 2), chunk=(chunk, 2), batch=(batch, 1), workers=(workers, 1))
    out_dir = Path(out_dir)
    sizes = {out_dir / f"jets_{k:04d}.root": min(chunk, jets - k * chunk) for k in range((jets + chunk - 1) // chunk)}
    missing = [(path, seed, k, size, batch) for k, (path, size) in enumerate(sizes.items()) if not path.exists()]
    with tqdm(total=jets, initial=jets - sum(task[3] for task in missing), desc="jets", unit="jet",
              disable=not progress) as bar:
        for size in map_tasks(_write_chunk, missing, workers):
            bar.update(size)
    return list(sizes)


def _write_chunk(path: Path, seed: int, k: int, size: int, batch: int) -> int:
    """Chunk ``k``: QCD and top generated with their own seeds, merged and shuffled; returns its size."""
    selection = JetSelection()
    parts = [_generate_process(process, seed * 10_000 + 2 * k + label, size // 2 + (size % 2) * label, selection, batch)
             for label, process in enumerate(("qcd", "top"))]
    merged = {key: ak.concatenate([parts[0][key], parts[1][key]]) for key in parts[0]}
    order = np.random.default_rng(seed * 10_000 + k).permutation(size)
    with RootWriter(path) as out:
        out.extend("jets", {key: value[order] for key, value in merged.items()},
                   counter={"part_": "jet_nparticles", "sv_": "jet_nsv"})
    return size


def _generate_process(process: str, seed: int, n: int, selection: JetSelection, batch: int,
                      resolution: TrackResolution = TrackResolution()) -> dict[str, object]:
    pythia = make_pythia(process, seed, selection)
    rng = np.random.default_rng(seed)  # the detector smearing
    found, total = [], 0
    while total < n:
        prt = pythia.nextBatch(batch).prt
        jets, members = select_jets(prt, process, selection)
        if len(jets):
            record = DecayRecord.from_pythia(prt, pythia.particleData)
            found.append(jet_branches(jets, members, record, int(process == "top"), selection.radius, resolution, rng))
            total += len(jets)
    return {key: ak.concatenate([branches[key] for branches in found])[:n] for key in found[0]}


JETS = DatasetSpec(name="jets", domain="hep", schema="jets-root",
                   description="top vs QCD jets, 14 TeV Pythia 8 + fastjet anti-kT 0.8 (needs the gen extra)",
                   generate=generate_jets)
