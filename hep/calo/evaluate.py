"""``physml hep evaluate calo``: generated showers against GFlash reference showers, the CaloChallenge way.

For the incident energies of the first N reference showers, the trained model generates showers with each
requested sampler, and GFlash itself generates a second, independent set with a new seed: that set is the
noise floor of every metric (a perfect generator scores what GFlash scores against itself). Every sample
set is written in the CaloChallenge HDF5 format; metrics go to ``metrics.json`` and ``table.md``, pictures
to PNG files, and the generation time per shower is measured for GFlash and each sampler.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from datasets.atomic import refuse_overwriting_inputs
from datasets.showers import CaloGeometry, read_showers, write_showers
from hep.calo import metrics, plots
from hep.calo.flow import RECIPE as FLOW_RECIPE
from hep.calo.flow import CaloFlow
from hep.calo.generate_showers import SHIPPED
from hep.calo.gflash import TUNGSTEN, simulate_showers
from hep.calo.model import RECIPE, CaloDiffusion
from training.inference import inference_device
from training.pretrained import evaluation_target
from training.recipe import load
from training.report import Column, Report

Generator = Callable[[np.ndarray], np.ndarray]  # incident energies [B, 1] MeV -> showers [B, V] MeV
COLUMNS = [Column("auc_low", "AUC low-level"), Column("auc_high", "AUC high-level"), Column("fpd", "FPD"),
           Column("fpd_error", "FPD error", format=".2g"), Column("separation_E_ratio", "sep. E_tot/E_inc"),
           Column("separation_E_layer", "sep. E_layer"), Column("separation_width_eta", "sep. width_eta"),
           Column("separation_sparsity", "sep. sparsity"),
           Column("seconds_per_shower_b1", "time per shower (batch 1)", "s"),
           Column("seconds_per_shower_b100", "time per shower (batch 100)", "s")]


def gflash_generator(geometry: CaloGeometry, seed: int) -> Generator:
    rng = np.random.default_rng(seed)
    return lambda energy: simulate_showers(energy.ravel(), geometry, TUNGSTEN, rng).deposits


def model_generator(model: CaloDiffusion | CaloFlow, sampler: str, steps: int, seed: int) -> Generator:
    """Showers of ``model`` (on its device, its own seeded generator) as numpy arrays."""
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    chosen = model.sampler(sampler, steps)
    return lambda energy: model.generate(torch.from_numpy(energy), chosen, generator).cpu().numpy()


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


def evaluate(run_dir: str = "runs/calo", data: str | None = None, out: str | None = None, showers: int = 500,
             samplers: tuple[str, ...] | None = None, seed: int = 0,
             classifier_hidden: int = 512, batch: int = 100,
             gflash_batches: tuple[int, ...] = (1, 100, 10_000), device: str = "cpu",
             pretrained: str | None = None) -> Report:
    """Score each sampler of a ``train calo`` or ``train calo-flow`` run, with and without its energy model,
    and GFlash's own noise floor against reference showers; showers (CaloChallenge HDF5),
    pictures, table.md and metrics.json go to ``out``.

    Args:
        run_dir: the ``train calo`` or ``train calo-flow`` run folder.
        data: reference shower file (default: test.h5 of the run's data).
        out: output folder (default: RUN_DIR/eval).
        showers: how many reference showers to match.
        samplers: SAMPLER:STEPS items, SAMPLER one of ddpm, ddim, edm (diffusion) or euler, heun (flow);
            default: the model's DEFAULT_SAMPLERS.
        seed: seeds the samplers, GFlash's second sample and the classifier.
        classifier_hidden: hidden units of the classifier test.
        batch: showers generated per call.
        gflash_batches: batch sizes at which GFlash's time per shower is measured.
        device: where the generator runs: cpu (default: the published times are CPU times), auto, cuda or
            cuda:N; the energy model and the classifier run on the CPU.
        pretrained: score a shipped generator instead of ``run_dir`` (``physml models list``; needs ``data``).
    """
    if pretrained is not None:
        run_dir, out = evaluation_target(pretrained, SHIPPED, data, out)
    model, run = load(run_dir, [RECIPE, FLOW_RECIPE], device=str(inference_device(device)))
    reference_file = Path(data or Path(run.data_dir) / "test.h5")
    out_dir = Path(out or Path(run_dir) / "eval")
    refuse_overwriting_inputs(out_dir, [reference_file, reference_file.parent])
    geometry = model.cfg.geometry
    energy, reference_showers = read_showers(reference_file, geometry, showers)
    reference = {"energy": energy, "showers": reference_showers,
                 "features": metrics.high_level_features(reference_showers, energy, geometry)}
    sets = {"gflash": ("GFlash (new seed)", gflash_generator(geometry, seed + 1))}
    for name, steps in _samplers(samplers or model.DEFAULT_SAMPLERS):
        sets[f"{name}_{steps}"] = (f"{name} {steps} steps", model_generator(model, name, steps, seed))
    report = Report(f"Generated showers against {reference_file}", COLUMNS,
                    info={"run_dir": str(run_dir), "reference": str(reference_file), "n_showers": len(energy),
                          "out": str(out_dir)})
    samples = {"reference": reference_showers}
    renormalise = torch.Generator().manual_seed(seed + 2)
    model.total.cpu()  # the energy model draws on the CPU; generation never uses it
    for key, (label, fn) in sets.items():
        generated, per_shower = generate(fn, energy, batch, label)
        variants = {key: (label, generated)}
        if key != "gflash":  # the same samples, total energy from the energy model (two-stage generation)
            variants[f"{key}_energy_model"] = (f"{label} + energy model", model.total.renormalise(
                torch.from_numpy(generated), torch.from_numpy(energy), renormalise).numpy())
        sizes = gflash_batches if key == "gflash" else (1,)
        timing = {f"seconds_per_shower_b{batch}": per_shower,
                  **{f"seconds_per_shower_b{b}": seconds_per_shower(fn, energy, b) for b in sizes if b != batch}}
        for variant, (name, showers_) in variants.items():
            samples[name] = showers_
            write_showers(out_dir / f"{variant}.h5", energy, showers_, geometry,
                          {"generator": name, "run_dir": str(run_dir)})
            entry = {"energy": energy, "showers": showers_,
                     "features": metrics.high_level_features(showers_, energy, geometry)}
            report.add(variant, name, {**score(reference, entry, seed, classifier_hidden), **timing})
    _pictures(out_dir, samples, energy, geometry)
    report.write(out_dir)
    return report


def _samplers(specs: tuple[str, ...]) -> list[tuple[str, int]]:
    try:
        return [(name, int(steps)) for name, steps in (spec.split(":") for spec in specs)]
    except ValueError:
        raise ValueError(f"samplers are SAMPLER:STEPS items (e.g. ddim:50), got {' '.join(specs)}") from None


def _pictures(out: Path, samples: dict[str, np.ndarray], energy: np.ndarray, geometry: CaloGeometry) -> None:
    plots.average_images(out / "average_images.png", samples, geometry)
    plots.profiles(out / "profiles.png", samples, {k: energy for k in samples}, geometry)
    features = {k: metrics.high_level_features(s, energy, geometry) for k, s in samples.items()}
    plots.feature_histograms(out / "features.png", features)
