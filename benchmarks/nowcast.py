"""Nowcast cost: one 18-frame forecast on a 256 x 256 km crop for DGMR (per ensemble member, the small CPU
configuration and the paper's widths; untrained weights cost the same as trained ones), pysteps
extrapolation and pysteps STEPS (per member); then data loading: random 22-frame 256 x 256 windows read
lazily from the same archive stored as NetCDF (h5netcdf) and as Zarr.

    nowcast: <what> ours X s, reference Y s, ratio Y/X

Usage: python benchmarks/nowcast.py [--size 256] [--members 4] [--repeats 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from timing import best_of  # benchmarks/timing.py

from datasets.radar import VARIABLE, open_radar, radar_dataset, write_radar
from weather import synthetic
from weather.baselines import Extrapolation, ModelNowcast, Steps
from weather.dgmr import DGMRConfig, Generator


def report(what: str, ours: float, reference: float) -> None:
    print(f"nowcast: {what} ours {ours:.3f} s, reference {reference:.3f} s, ratio {reference / ours:.2f}",
          flush=True)


def forecasts(context: np.ndarray, members: int, repeats: int) -> None:
    steps = Steps()
    t_steps = best_of(lambda: steps.forecast(context, members=members, seed=0), repeats) / members
    t_extrap = best_of(lambda: Extrapolation().forecast(context), repeats)
    print(f"nowcast: pysteps extrapolation {t_extrap:.3f} s per forecast; STEPS {t_steps:.3f} s per member "
          f"({members} members)", flush=True)
    for base in (4, 24):
        torch.manual_seed(0)
        model = Generator(DGMRConfig(base=base, corrects="nothing")).eval()  # the network alone
        nowcast = ModelNowcast(model, f"DGMR base {base}", stochastic=True, batch=members)
        t_dgmr = best_of(lambda: nowcast.forecast(context, members=members), repeats) / members
        report(f"DGMR base {base} per member vs STEPS per member", t_dgmr, t_steps)
        report(f"DGMR base {base} per member vs extrapolation", t_dgmr, t_extrap)


def loading(size: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        rain = synthetic.simulate_event(synthetic.draw_event(rng), rng, size=size, frames=72)
        ds = open_radar(write_radar(radar_dataset(rain, "2026-01-01T00:00"), Path(tmp) / "a.nc"))
        stores = {"NetCDF": Path(tmp) / "a.nc", "Zarr": write_radar(ds.load(), Path(tmp) / "a.zarr")}
        starts = np.random.default_rng(1).integers(0, 72 - 22, 20)
        seconds = {}
        for name, path in stores.items():
            lazy = open_radar(path)
            seconds[name] = best_of(lambda: [lazy[VARIABLE][t:t + 22].values for t in starts], repeats)
            mb = 20 * 22 * size * size * 4 / 1e6
            print(f"nowcast: read {name} {mb / seconds[name]:.0f} MB/s ({20 / seconds[name]:.1f} windows/s)",
                  flush=True)
        report("Zarr read vs NetCDF read", seconds["Zarr"], seconds["NetCDF"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    context = synthetic.simulate_event(synthetic.draw_event(rng), rng, size=args.size, frames=4)
    forecasts(context, args.members, args.repeats)
    loading(args.size, args.repeats)


if __name__ == "__main__":
    main()
