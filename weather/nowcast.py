"""One nowcast from an archive file: the context frames up to a reference time, forecast by a trained model
or a baseline, written as a ``radar-forecast`` NetCDF file with an ensemble dimension."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from datasets.atomic import refuse_overwriting_inputs
from datasets.radar import VARIABLE, forecast_dataset, open_radar, write_forecast
from weather.baselines import Extrapolation, Persistence, SProg, Steps
from training.pretrained import resolve
from weather.train import SHIPPED, load_nowcaster

BASELINES = {"persistence": Persistence, "extrapolation": Extrapolation, "sprog": SProg, "steps": Steps}


def nowcast(source: str, *, out: str, run_dir: str | None = None,
            baseline: Literal["persistence", "extrapolation", "sprog", "steps"] | None = None, time: str | None = None,
            members: int = 6, seed: int = 0, leads: int = 18, device: str = "auto",
            pretrained: str | None = None) -> Path:
    """Forecast from the frames of ``source`` (a ``radar`` file) up to ``time`` (default: the 4th frame) with
    the model of ``run_dir`` or the named ``baseline``; write ``out`` (a ``radar-forecast`` NetCDF file).

    Models need a grid divisible by 32: the image is cut to its south-west ``32 * n`` x ``32 * m`` pixels.

    Args:
        source: a radar file (.nc or .zarr) holding the context frames.
        out: the forecast file (.nc).
        run_dir: a ``train dgmr``, ``train unet`` or ``train ldm`` run folder (or give ``baseline``).
        baseline: persistence, extrapolation, sprog or steps (or give ``run_dir``).
        time: reference time, ISO 8601.
        members: ensemble members (stochastic methods).
        seed: seeds the stochastic methods.
        leads: lead times of a baseline (a model has its own).
        device: where a model runs: auto (CUDA when present), cpu, cuda or cuda:N (baselines run on the CPU).
        pretrained: forecast with a shipped model instead of ``run_dir`` (``physml models list``).
    """
    reference_time = time
    if pretrained is not None:
        run_dir = str(resolve(run_dir, pretrained, SHIPPED))
    if (run_dir is None) == (baseline is None):
        raise ValueError("give exactly one of a run folder (--run-dir), a shipped model (--pretrained) or a "
                         "baseline (--baseline)")
    refuse_overwriting_inputs(out, [source] + ([run_dir] if run_dir else []))
    ds = open_radar(source, check_data=True)
    if run_dir is not None:
        method, run = load_nowcaster(run_dir, device)
        context, leads, label = run.sampling.context, run.sampling.leads, method.name
        ds = ds.isel(y=slice(0, ds.sizes["y"] // 32 * 32), x=slice(0, ds.sizes["x"] // 32 * 32))
    else:
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
        context, method, label = 4, BASELINES[baseline](leads), baseline
    times = ds["time"].values
    ref = np.datetime64(reference_time, "s") if reference_time else times[context - 1]
    index = int(np.searchsorted(times, ref))
    if index >= len(times) or times[index] != ref:
        first, last = (np.datetime_as_string(t, unit="m") for t in (times[0], times[-1]))
        raise ValueError(f"{source}: no frame at {ref}; the file covers {first} .. {last}")
    if index < context - 1:
        raise ValueError(f"{source}: {ref} has only {index + 1} frames before it; the method needs {context}")
    frames = np.nan_to_num(ds[VARIABLE][index - context + 1:index + 1].values, nan=0.0)
    forecast = method.forecast(frames, members if method.stochastic else 1, seed)
    forecast = np.where(ds["valid"].values.astype(bool), forecast, 0.0)  # outside the coverage: see 'valid'
    result = forecast_dataset(forecast, ds, ref, label,
                              {"source": str(source), "seed": seed})
    return write_forecast(result, out)
