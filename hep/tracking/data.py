"""The ``tracking`` dataset: events of the barrel tracker simulation written to ROOT (schema ``tracking-events``).

Each split file holds two TTrees with one entry per event: ``hits`` (``event_id``; jagged ``hit_id``, ``x``,
``y``, ``z`` [mm], ``layer``, ``particle_id`` (-1 for noise), counter ``nhits``) and ``particles``
(``event_id``; jagged ``particle_id``, ``vx``, ``vy``, ``vz`` [mm], ``px``, ``py``, ``pz``, ``pt`` [GeV],
``eta``, ``phi``, ``q``, ``nhits``, counter ``nparticles``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import awkward as ak
import numpy as np
from tqdm.auto import tqdm

from datasets.registry import DatasetSpec, require_at_least
from datasets.root import RootWriter
from hep.tracking.detector import Detector, Hits, Particles, sample_particles, simulate_event

SPLITS = ("train", "valid", "test")
CHUNK = 50  # events per written basket


def simulate_events(n_events: int, source: Callable[[], Particles], detector: Detector,
                    rng: np.random.Generator) -> Iterator[tuple[Particles, Hits]]:
    """Events of particles drawn by ``source()``, through the detector."""
    for _ in range(n_events):
        particles = source()
        yield particles, simulate_event(particles, detector, rng)


def particle_source(generator: str, particles: int, pileup: float, pt_min: float, rng: np.random.Generator,
                    seed: int) -> Callable[[], Particles]:
    """``parametric``: a Poisson number (mean ``particles``) from the falling pT spectrum; ``pythia``: Pythia 8
    minimum bias overlaid ``pileup`` times (Poisson) per crossing."""
    if generator == "parametric":
        return lambda: sample_particles(max(1, rng.poisson(particles)), rng, pt_min=pt_min)
    if generator == "pythia":
        from hep.tracking.pythia import MinimumBias

        minimum_bias = MinimumBias(seed=seed, pt_min=pt_min)
        return lambda: minimum_bias.next(pileup, rng)
    raise ValueError(f"generator must be parametric or pythia, got {generator!r}")


def event_branches(events: list[tuple[Particles, Hits]], first_event: int) -> tuple[dict, dict]:
    """Jagged branches of the ``hits`` and ``particles`` trees for a list of events."""
    hit_counts = [len(h.layer) for _, h in events]
    part_counts = [len(p.charge) for p, _ in events]

    def jagged(values: list[np.ndarray], counts: list[int]) -> ak.Array:
        return ak.unflatten(np.concatenate(values), counts)

    event_id = np.arange(first_event, first_event + len(events), dtype=np.int64)
    hits = {"event_id": event_id,
            "hit_id": jagged([np.arange(n, dtype=np.int64) for n in hit_counts], hit_counts),
            **{axis: jagged([h.position[:, i].astype(np.float32) for _, h in events], hit_counts)
               for i, axis in enumerate("xyz")},
            "layer": jagged([h.layer.astype(np.int32) for _, h in events], hit_counts),
            "particle_id": jagged([h.particle_id.astype(np.int64) for _, h in events], hit_counts)}
    columns = {"particle_id": [np.arange(len(p.charge), dtype=np.int64) for p, _ in events],
               "vx": [p.vertex[:, 0] for p, _ in events], "vy": [p.vertex[:, 1] for p, _ in events],
               "vz": [p.vertex[:, 2] for p, _ in events], "px": [p.momentum[:, 0] for p, _ in events],
               "py": [p.momentum[:, 1] for p, _ in events], "pz": [p.momentum[:, 2] for p, _ in events],
               "pt": [p.pt for p, _ in events], "eta": [p.eta for p, _ in events], "phi": [p.phi for p, _ in events],
               "q": [p.charge for p, _ in events],
               "nhits": [np.bincount(h.particle_id[h.particle_id >= 0], minlength=len(p.charge)) for p, h in events]}
    particles = {"event_id": event_id,
                 **{k: jagged([np.asarray(v, dtype=np.int32 if k == "nhits" else
                                          np.int64 if k == "particle_id" else np.float32) for v in vs], part_counts)
                    for k, vs in columns.items()}}
    return hits, particles


def generate_tracking(out_dir: str | Path, seed: int = 0, events: int = 40, particles: int = 200,
                      noise_per_layer: float = 0.0, pt_min: float = 0.5, generator: str = "parametric",
                      pileup: float = 20.0, progress: bool = True) -> list[Path]:
    """Write ``train.root`` (``events``), ``valid.root`` and ``test.root`` (a quarter each, at least one) of the
    TrackML-like barrel (2 T, 10 layers). ``generator=parametric``: ``particles`` is the mean number per event
    (the pile-up knob); ``generator=pythia`` (gen extra): ``pileup`` minimum-bias pp interactions per event.
    Noise hits per layer are Poisson with mean ``noise_per_layer``."""
    require_at_least(events=(events, 1), particles=(particles, 1), noise_per_layer=(noise_per_layer, 0.0),
                     pt_min=(pt_min, 0.0), pileup=(pileup, 0.0))
    detector = Detector(noise_per_layer=noise_per_layer)
    rng = np.random.default_rng(seed)
    source = particle_source(generator, particles, pileup, pt_min, rng, seed)
    counts = {"train": events, "valid": max(1, events // 4), "test": max(1, events // 4)}
    written = []
    with tqdm(total=sum(counts.values()), desc="tracking events", unit="event", disable=not progress) as bar:
        for split in SPLITS:
            path = Path(out_dir) / f"{split}.root"
            with RootWriter(path) as out:
                for start in range(0, counts[split], CHUNK):
                    chunk = list(simulate_events(min(CHUNK, counts[split] - start), source, detector, rng))
                    hits, parts = event_branches(chunk, start)
                    out.extend("hits", hits, counter="nhits")
                    out.extend("particles", parts, counter="nparticles")
                    bar.update(len(chunk))
            written.append(path)
    return written


TRACKING = DatasetSpec(name="tracking", domain="hep", schema="tracking-events",
                       description="TrackML-like barrel events (helices in 2 T, scattering, smearing) in ROOT",
                       generate=generate_tracking)
