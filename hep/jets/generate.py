"""Top-tagging jets with the recipe of the Top Quark Tagging Reference Dataset (Kasieczka et al. 2019,
arXiv:1902.09914), at particle level (no detector simulation): 14 TeV pp, hadronic ttbar (signal) against
QCD dijets (background) from Pythia 8 with MPI off, anti-kT R = 0.8 jets of visible final-state particles
with 550 < pT < 650 GeV and |eta| < 2, the leading 200 constituents. A top jet must contain its top quark and
the top's b, q and q' within dR < 0.8 of the jet axis. Jet substructure (tau_1..3 with OnePass kT axes,
beta = 1; soft-drop mass with z_cut = 0.1, beta = 0) comes from fastjet, computed once here.

Pythia runs in batches (``nextBatch``, awkward arrays) and fastjet clusters whole batches; the only Python
loop is over events for the truth matching. Requires the ``gen`` extra (pythia8mc, fastjet).
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


def delta_r(eta1, phi1, eta2, phi2):
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)


def _eta_phi(px, py, pz):
    pt = np.hypot(px, py)
    return np.arcsinh(pz / np.maximum(pt, 1e-12)), np.arctan2(py, px)


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
                tops.append(np.column_stack(_eta_phi(*p[members].T)))
        out.append(tops)
    return out


def cluster(prt: ak.Array, selection: JetSelection):
    """Anti-kT jets (pT-sorted) and their pT-sorted constituents, of visible final-state particles."""
    fastjet = require("fastjet")
    neutrino = (np.abs(prt.id) == NEUTRINOS[0]) | (np.abs(prt.id) == NEUTRINOS[1]) | (np.abs(prt.id) == NEUTRINOS[2])
    visible = prt[(prt.status > 0) & ~neutrino]
    particles = ak.zip({"px": visible.p.px, "py": visible.p.py, "pz": visible.p.pz, "E": visible.p.e})
    sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, selection.radius))
    jets = sequence.inclusive_jets(min_pt=selection.pt_min)
    constituents = sequence.constituents(min_pt=selection.pt_min)
    order = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)  # inclusive_jets are not sorted
    jets, constituents = jets[order], constituents[order]
    by_pt = ak.argsort(np.hypot(constituents.px, constituents.py), axis=2, ascending=False)
    return jets, constituents[by_pt][:, :, :selection.max_constituents]


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
    """Flat jets and constituents in the pT/eta window (top: truth-matched ones only)."""
    jets, constituents = cluster(prt, selection)
    pt = np.hypot(jets.px, jets.py)
    eta, phi = _eta_phi(jets.px, jets.py, jets.pz)
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
    return ak.flatten(jets[keep]), ak.flatten(constituents[keep], axis=1)


def jet_branches(jets: ak.Array, constituents: ak.Array, label: int, radius: float) -> dict[str, object]:
    """The ROOT branches of a set of jets: jet-level float64 [GeV], jagged float32 ``part_*`` [GeV] with the
    counter ``jet_nparticles``."""
    px, py, pz, e = (ak.to_numpy(jets[k]) for k in ("px", "py", "pz", "E"))
    eta, phi = _eta_phi(px, py, pz)
    return {"jet_pt": np.hypot(px, py), "jet_eta": eta, "jet_phi": phi, "jet_energy": e,
            "jet_mass": np.sqrt(np.maximum(e ** 2 - px ** 2 - py ** 2 - pz ** 2, 0.0)),
            "label": np.full(len(px), label, dtype=np.int32), **substructure(constituents, radius),
            **{f"part_{name}": ak.values_astype(constituents[key], np.float32)  # halves the files
               for name, key in (("px", "px"), ("py", "py"), ("pz", "pz"), ("energy", "E"))}}


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
        out.extend("jets", {key: value[order] for key, value in merged.items()}, counter="jet_nparticles")
    return size


def _generate_process(process: str, seed: int, n: int, selection: JetSelection, batch: int) -> dict[str, object]:
    pythia = make_pythia(process, seed, selection)
    found, constituents = [], []
    total = 0
    while total < n:
        jets, parts = select_jets(pythia.nextBatch(batch).prt, process, selection)
        found.append(jets)
        constituents.append(parts)
        total += len(jets)
    jets, parts = ak.concatenate(found)[:n], ak.concatenate(constituents)[:n]
    return jet_branches(jets, parts, int(process == "top"), selection.radius)


JETS = DatasetSpec(name="jets", domain="hep", schema="jets-root",
                   description="top vs QCD jets, 14 TeV Pythia 8 + fastjet anti-kT 0.8 (needs the gen extra)",
                   generate=generate_jets)
