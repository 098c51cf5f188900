"""Shower generation speed: the diffusion generator against GFlash, the parameterisation it learns from.

Times GFlash (vectorised numpy: gamma integrals and one multinomial per layer) at batch sizes 1, 100 and
10000, and the CaloDiffusion network (reference widths 16/32/64, untrained: the cost does not depend on the
weights) for one network evaluation at batch 1 and 100, scaled to DDIM 50 steps, EDM Heun 18 steps (35
evaluations) and DDPM 400 steps. Prints one line per sampler and batch size:

    calo_generation: ours X s/shower, reference Y s/shower, ratio Y/X   (ours = sampler, reference = GFlash)

A ratio below 1 means GFlash is faster; on a CPU it is, by orders of magnitude (docs/hep.md says why).

Usage: python benchmarks/calo_generation.py [--batches 1 100] [--repeats 3]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from hep.calo.data import log_uniform_energies
from hep.calo.gflash import simulate_showers
from hep.calo.model import CaloDiffusion, CaloDiffusionConfig
from physml.demo import best_of

SAMPLER_NFE = {"DDIM 50": 50, "EDM Heun 18": 35, "DDPM 400": 400}


def gflash_seconds(batch: int, repeats: int) -> float:
    energy = log_uniform_energies(batch, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    seconds, _ = best_of(repeats, lambda: simulate_showers(energy, rng=rng))
    return seconds / batch


@torch.no_grad()
def network_seconds(model: CaloDiffusion, batch: int, repeats: int) -> float:
    """One network evaluation per shower, the unit every sampler step costs."""
    energy = torch.from_numpy(log_uniform_energies(batch, np.random.default_rng(0)).astype(np.float32))[:, None]
    x = torch.randn(batch, 1, *model.cfg.geometry.shape)
    t = torch.full((batch,), 100)
    model(x, t, energy)
    seconds, _ = best_of(repeats, lambda: model(x, t, energy))
    return seconds / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = CaloDiffusion(CaloDiffusionConfig()).eval()
    for batch in (1, 100, 10_000):
        print(f"GFlash batch {batch}: {gflash_seconds(batch, args.repeats):.3g} s/shower", flush=True)
    for batch in args.batches:
        reference = gflash_seconds(batch, args.repeats)
        per_eval = network_seconds(model, batch, args.repeats)
        for name, nfe in SAMPLER_NFE.items():
            ours = per_eval * nfe
            print(f"calo_generation: {name} batch {batch}: ours {ours:.3g} s/shower, reference {reference:.3g} "
                  f"s/shower, ratio {reference / ours:.3g}", flush=True)


if __name__ == "__main__":
    main()
