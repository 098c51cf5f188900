"""``physml hep generate-showers``: showers of a trained generator for the incident energies you ask for,
written in the CaloChallenge HDF5 format (``incident_energies [N, 1]``, ``showers [N, V]``, MeV).

Energies are given as values (``--energies 1000 50000``: ``--n`` showers each) or as a range
(``--log-uniform 1000 1000000``: ``--n`` showers log-uniform in it, as CaloChallenge dataset 2 is sampled).
With the run's energy model (two-stage generation, ``--energy-model``, the default) each shower's total is
drawn from the model's learned E_dep/E_inc distribution; the sampler and its steps are the run's defaults
unless given.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from datasets.showers import write_showers
from hep.calo.flow import RECIPE as FLOW_RECIPE
from hep.calo.model import RECIPE
from training.inference import inference_device
from training.pretrained import Card, cards, resolve
from training.recipe import load

SHIPPED: dict[str, Card] = cards(Path(__file__).with_name("pretrained"))


def incident_energies(energies: tuple[float, ...], log_uniform: tuple[float, float] | None, n: int,
                      seed: int) -> np.ndarray:
    """``[N, 1]`` float32 MeV: ``n`` of each of ``energies``, or ``n`` log-uniform in ``log_uniform``."""
    if (not energies) == (log_uniform is None):
        raise ValueError("give either --energies E [E ...] or --log-uniform LOW HIGH (MeV)")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    values = np.repeat(np.asarray(energies, np.float64), n) if energies else \
        np.exp(np.random.default_rng(seed).uniform(*np.log(log_uniform), n))
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError("incident energies must be positive MeV")
    return values.astype(np.float32)[:, None]


def generate_showers(out: str = "showers.h5", energies: tuple[float, ...] | None = None, n: int = 100,
                     log_uniform: tuple[float, float] | None = None, model: str | None = None,
                     pretrained: str | None = None, sampler: str | None = None, energy_model: bool = True,
                     seed: int = 0, batch: int = 100, device: str = "auto") -> Path:
    """Generate showers with a trained calorimeter generator; write them in the CaloChallenge HDF5 format.

    Args:
        out: the shower file (written atomically).
        energies: incident energies in MeV; ``n`` showers of each.
        n: showers per energy (or in total with ``log_uniform``).
        log_uniform: LOW HIGH in MeV: ``n`` energies log-uniform in this range instead.
        model: a ``train calo-flow`` or ``train calo`` run folder.
        pretrained: a shipped generator instead (``physml models list``).
        sampler: SAMPLER:STEPS (e.g. euler:16; default: the model's first default sampler).
        energy_model: draw each shower's total energy from the run's energy model.
        seed: seeds the energies and the sampler.
        batch: showers per call.
        device: auto (CUDA when present), cpu, cuda or cuda:N.
    """
    energy = incident_energies(tuple(energies or ()), log_uniform, n, seed)
    dev = inference_device(device)
    generator, _ = load(resolve(model, pretrained, SHIPPED), [FLOW_RECIPE, RECIPE], device=str(dev))
    name, steps = (sampler or generator.DEFAULT_SAMPLERS[0]).split(":")
    chosen = generator.sampler(name, int(steps))
    torch_rng = torch.Generator(device=dev).manual_seed(seed)
    total = generator.total.cpu()  # the energy model draws on the CPU (generation never uses it)
    showers = []
    for start in tqdm(range(0, len(energy), batch), desc="generate showers", unit="batch"):
        part = torch.from_numpy(energy[start:start + batch])
        made = generator.generate(part.to(dev), chosen, torch_rng).cpu()
        showers.append((total.renormalise(made, part, torch.Generator().manual_seed(seed + start))
                        if energy_model else made).numpy())
    return write_showers(out, energy, np.concatenate(showers), generator.cfg.geometry,
                         {"generator": f"{type(generator).__name__} {name} {steps} steps"
                                       f"{' + energy model' if energy_model else ''}", "seed": seed})
