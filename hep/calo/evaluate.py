"""``physml hep evaluate-calo``: generated showers against GFlash reference showers, the CaloChallenge way.

For the incident energies of the first N reference showers, the trained model generates showers with each
requested sampler, and GFlash itself generates a second, independent set with a new seed: that set is the
noise floor of every metric (a perfect generator scores what GFlash scores against itself). Every sample
set is written in the CaloChallenge HDF5 format; metrics go to ``metrics.json`` and ``table.md``, pictures
to PNG files, and the generation time per shower is measured for GFlash and each sampler.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from datasets.atomic import atomic_open
from datasets.showers import CaloGeometry, read_showers, write_showers
from hep.calo import metrics, plots
from hep.calo.gflash import TUNGSTEN, simulate_showers
from hep.calo.model import CaloDiffusion, load_model

DEFAULT_SAMPLERS = (("ddim", 50), ("edm", 18), ("ddpm", 400))
Generator = Callable[[np.ndarray], np.ndarray]  # incident energies [B, 1] MeV -> showers [B, V] MeV


def gflash_generator(geometry: CaloGeometry, seed: int) -> Generator:
    rng = np.random.default_rng(seed)
    return lambda energy: simulate_showers(energy.ravel(), geometry, TUNGSTEN, rng).deposits


def model_generator(model: CaloDiffusion, sampler: str, steps: int, seed: int) -> Generator:
    generator = torch.Generator().manual_seed(seed)
    return lambda energy: model.generate(torch.from_numpy(energy), sampler, steps, generator).numpy()


def slug(label: str) -> str:
    """A file name for a row label: ``edm 18 steps + energy model`` -> ``edm_18_steps_energy_model``."""
    return "_".join(label.lower().replace("+", " ").replace("(", " ").replace(")", " ").split())


def generate(fn: Generator, energy: np.ndarray, batch: int, desc: str) -> tuple[np.ndarray, float]:
    """Showers for all ``energy`` in batches, and the seconds per shower it took."""
    out = []
    start = time.perf_counter()
    for i in tqdm(range(0, len(energy), batch), desc=desc, unit="batch", leave=False):
        out.append(fn(energy[i:i + batch]))
    return np.concatenate(out), (time.perf_counter() - start) / len(energy)


def seconds_per_shower(fn: Generator, energy: np.ndarray, batch: int) -> float:
    """Time per shower of one batch of ``batch`` showers, after a one-shower warm-up."""
    fn(energy[:1])
    sample = np.resize(energy, (batch, 1))
    start = time.perf_counter()
    fn(sample)
    return (time.perf_counter() - start) / batch


def score(reference: dict, generated: dict, seed: int, hidden: int) -> dict[str, float]:
    """Separation powers, Frechet distance and low-/high-level classifier AUCs of one generated set."""
    ref_f, gen_f = reference["features"], generated["features"]
    high_r, high_g = metrics.feature_matrix(ref_f), metrics.feature_matrix(gen_f)
    log_e_r, log_e_g = np.log10(reference["energy"]), np.log10(generated["energy"])
    low = metrics.classifier_test(np.column_stack([reference["showers"] / reference["energy"], log_e_r]),
                                  np.column_stack([generated["showers"] / generated["energy"], log_e_g]),
                                  seed=seed, hidden=hidden)
    high = metrics.classifier_test(np.column_stack([high_r, log_e_r]), np.column_stack([high_g, log_e_g]),
                                   seed=seed, hidden=hidden)
    separation = metrics.separation_powers(ref_f, gen_f)
    fpd, fpd_error = metrics.frechet_physics_distance(high_r, high_g, seed=seed)
    return {"auc_low": low["auc"], "jsd_low": low["jsd"], "auc_high": high["auc"], "jsd_high": high["jsd"],
            "fpd": fpd, "fpd_error": fpd_error,
            **{f"separation_{k}": v for k, v in separation.items()}}


def evaluate(run_dir: str | Path, reference_file: str | Path, out: str | Path, n_showers: int = 500,
             samplers: tuple[tuple[str, int], ...] = DEFAULT_SAMPLERS, batch: int = 100, seed: int = 0,
             classifier_hidden: int = 512, gflash_batches: tuple[int, ...] = (1, 100, 10_000)) -> dict[str, dict]:
    """Score each sampler of a ``train-calo`` run and GFlash's own noise floor; returns ``{row: metrics}``."""
    out = Path(out)
    model, _ = load_model(run_dir)
    geometry = model.cfg.geometry
    energy, showers = read_showers(reference_file, geometry, n_showers)
    reference = {"energy": energy, "showers": showers,
                 "features": metrics.high_level_features(showers, energy, geometry)}
    floor = "GFlash (new seed)"
    sets = {floor: gflash_generator(geometry, seed + 1)}
    sets.update({f"{name} {steps} steps": model_generator(model, name, steps, seed) for name, steps in samplers})
    table, samples = {}, {"reference": showers}
    renormalise = torch.Generator().manual_seed(seed + 2)
    for label, fn in sets.items():
        generated, per_shower = generate(fn, energy, batch, label)
        variants = {label: generated}
        if label != floor:  # the same samples, total energy from the energy model (two-stage generation)
            variants[f"{label} + energy model"] = model.renormalise(
                torch.from_numpy(generated), torch.from_numpy(energy), renormalise).numpy()
        timing = {f"seconds_per_shower_b{batch}": per_shower, "seconds_per_shower_b1": seconds_per_shower(fn, energy, 1)}
        for name, showers_ in variants.items():
            samples[name] = showers_
            write_showers(out / f"{slug(name)}.h5", energy, showers_, geometry,
                          {"generator": name, "run_dir": str(run_dir)})
            entry = {"energy": energy, "showers": showers_,
                     "features": metrics.high_level_features(showers_, energy, geometry)}
            table[name] = {**score(reference, entry, seed, classifier_hidden), **timing}
    table[floor].update({f"seconds_per_shower_b{b}": seconds_per_shower(sets[floor], energy, b)
                         for b in gflash_batches})
    _pictures(out, samples, energy, geometry)
    with atomic_open(out / "metrics.json") as fh:
        json.dump({"reference": str(reference_file), "n_showers": len(energy), "rows": table}, fh, indent=2)
    with atomic_open(out / "table.md") as fh:
        fh.write(format_table(table) + "\n")
    return table


def _pictures(out: Path, samples: dict[str, np.ndarray], energy: np.ndarray, geometry: CaloGeometry) -> None:
    plots.average_images(out / "average_images.png", samples, geometry)
    plots.profiles(out / "profiles.png", samples, {k: energy for k in samples}, geometry)
    features = {k: metrics.high_level_features(s, energy, geometry) for k, s in samples.items()}
    plots.feature_histograms(out / "features.png", features)


COLUMNS = (("auc_low", "AUC low-level"), ("auc_high", "AUC high-level"), ("fpd", "FPD"),
           ("separation_E_ratio", "sep. E_tot/E_inc"), ("separation_E_layer", "sep. E_layer"),
           ("separation_width_eta", "sep. width_eta"), ("separation_sparsity", "sep. sparsity"),
           ("seconds_per_shower_b1", "s/shower (batch 1)"), ("seconds_per_shower_b100", "s/shower (batch 100)"))


def format_table(table: dict[str, dict]) -> str:
    """A Markdown table: one row per sample set."""
    lines = ["| generator | " + " | ".join(title for _, title in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for label, row in table.items():
        cells = [(f"{row[key]:.3g} ± {row['fpd_error']:.2g}" if key == "fpd" else f"{row[key]:.3g}")
                 if key in row else "" for key, _ in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
