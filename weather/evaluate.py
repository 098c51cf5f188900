"""Verify nowcasters on held-out radar: every method forecasts the same test crops and is scored alike.

Methods: persistence, pysteps extrapolation, pysteps STEPS (ensemble) and each trained model (DGMR: an
ensemble of latent draws; U-Net: one member). Scores (:mod:`weather.metrics`): CSI at 1, 4 and 8 mm/h per lead,
at 1 km and after 4-km max pooling; CRPS per lead, per pixel and average/max pooled at 4 and 16 km; radially
averaged PSD against the observation's; seconds per forecast. Every window of the test events is scored
(every ``stride``-th start, no importance sampling: the scores are plain averages over the test archive; the
windows are listed in ``crops.json``).

Every method forecasts the whole ``crop`` (default: the full image, cut to a multiple of 32 pixels) and is
scored on its centre, ``margin`` km in from every side (default: a quarter of the crop): extrapolation cannot
bring in rain from outside its domain, and a verification area inside the forecast domain keeps that edge
effect out of every method's scores alike.

Writes ``metrics.json``, ``table.md``, ``csi.png``, ``crps.png``, ``psd.png`` and ``frames.png`` to ``out``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from datasets.atomic import atomic_open
from weather import plots
from weather.baselines import Extrapolation, ModelNowcast, Persistence, Steps
from weather.metrics import Scores
from datasets.radar import open_radar, radar_files
from weather.samples import RadarSamples, SamplingConfig, split_folder
from weather.train import load_nowcaster

REPORT_LEADS = (6, 12, 18)    # 30, 60 and 90 minutes


def methods(run_dirs: list[str], leads: int, steps: bool = True) -> list:
    found = [Persistence(leads), Extrapolation(leads)] + ([Steps(leads)] if steps else [])
    for run_dir in run_dirs:
        model, config = load_nowcaster(run_dir)
        name = f"{'DGMR' if config['model'] == 'dgmr' else 'U-Net'} ({Path(run_dir).name})"
        found.append(ModelNowcast(model, name, stochastic=config["model"] == "dgmr"))
    return found


def evaluate(run_dirs: list[str], data_dir: str | Path, out: str | Path, crops: int = 64,
             crop: int | None = None, margin: int | None = None, members: int = 6, seed: int = 0,
             steps: bool = True, progress: bool = True) -> dict:
    """Score every method on ``crops`` test windows; returns (and writes) the metrics."""
    out = Path(out)
    if crop is None:
        grid = open_radar(radar_files(split_folder(data_dir, "test"))[0])
        crop = min(grid.sizes["y"], grid.sizes["x"]) // 32 * 32
    margin = crop // 4 if margin is None else margin
    if crop % 32 or not 0 <= 2 * margin < crop:
        raise ValueError(f"crop must be a multiple of 32 and margin below crop / 2, got {crop} and {margin}")
    inner = slice(margin, crop - margin)
    cfg = SamplingConfig(crop=crop, q_min=1.0, candidates=1)  # q = 1: every window, once
    data = RadarSamples(split_folder(data_dir, "test"), cfg, seed=seed + 2)
    data.crops = data.crops[:crops]
    nowcasters = methods(run_dirs, cfg.leads, steps)
    scores = {m.name: Scores() for m in nowcasters}
    seconds = {m.name: 0.0 for m in nowcasters}
    showcase: tuple[float, dict] = (-1.0, {})
    for i in tqdm(range(len(data)), desc="test crops", disable=not progress):
        frames, valid = data.sequence(i)
        frames = np.nan_to_num(frames, nan=0.0)
        context, observed = frames[:cfg.context], frames[cfg.context:, inner, inner]
        valid = valid[inner, inner]
        rows = {"observed": observed}
        for m in nowcasters:
            t0 = time.perf_counter()
            forecast = m.forecast(context, members if m.stochastic else 1, seed=seed + i)[..., inner, inner]
            seconds[m.name] += time.perf_counter() - t0
            scores[m.name].add(forecast, observed, valid)
            rows[m.name] = forecast[0]
        wet = float((observed >= 1.0).mean())
        if wet > showcase[0]:
            showcase = (wet, rows)
    step = float(data.datasets[0]["time"].attrs["stepsize"]) / 60.0  # minutes
    metrics = {name: summary(s, seconds[name] / len(data)) for name, s in scores.items()}
    result = {"methods": metrics, "crops": len(data), "crop_km": crop, "margin_km": margin, "members": members,
              "seed": seed,
              "data_dir": str(data_dir), "runs": run_dirs, "sampling": dataclasses.asdict(cfg)}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "metrics.json") as fh:
        json.dump(result, fh, indent=1)
    with atomic_open(out / "crops.json") as fh:
        json.dump([dataclasses.asdict(c) | {"file": str(data.files[c.file])} for c in data.crops], fh)
    with atomic_open(out / "table.md") as fh:
        fh.write(format_table(result) + "\n")
    _figures(scores, showcase[1], step, out)
    return result


def summary(s: Scores, seconds: float) -> dict:
    csi = {f"{thr:g}": s.csi(thr).tolist() for thr in s.thresholds}
    pooled = {f"{thr:g}": s.csi(thr, pooled=True).tolist() for thr in s.thresholds}
    crps = {key: s.mean_crps(key).tolist() for key in s.crps}
    return {"csi": csi, "csi_pooled4": pooled, "crps": crps, "psd": s.psd().tolist(),
            "psd_observed": s.psd(observed=True).tolist(), "wavelength_km": s.wavelength.tolist(),
            "seconds_per_forecast": seconds}


def format_table(result: dict) -> str:
    leads = "/".join(f"{5 * k}" for k in REPORT_LEADS)
    head = (f"| method | CSI 1 mm/h ({leads} min) | CSI 4 mm/h | CSI 8 mm/h | CSI 4 mm/h, 4-km max pool | "
            "CRPS mm/h (mean over leads) | CRPS max-pool 16 km | CRPS avg-pool 16 km | s/forecast |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]

    def at(values: list[float]) -> str:
        return " / ".join(f"{values[k - 1]:.3f}" for k in REPORT_LEADS)

    for name, m in result["methods"].items():
        lines.append(f"| {name} | {at(m['csi']['1'])} | {at(m['csi']['4'])} | {at(m['csi']['8'])} | "
                     f"{at(m['csi_pooled4']['4'])} | {np.mean(m['crps']['pixel']):.3f} | "
                     f"{np.mean(m['crps']['max16']):.3f} | {np.mean(m['crps']['mean16']):.3f} | "
                     f"{m['seconds_per_forecast']:.2f} |")
    return "\n".join(lines)


def _figures(scores: dict[str, Scores], rows: dict[str, np.ndarray], step: float, out: Path) -> None:
    csi = {f"CSI >= {thr:g} mm/h": {n: s.csi(thr) for n, s in scores.items()} for thr in (1.0, 4.0, 8.0)}
    csi["CSI >= 4 mm/h, 4-km max pool"] = {n: s.csi(4.0, pooled=True) for n, s in scores.items()}
    plots.score_curves(csi, step, "CSI", out / "csi.png")
    crps = {title: {n: s.mean_crps(key) for n, s in scores.items()}
            for title, key in (("CRPS per pixel", "pixel"), ("CRPS, 16-km average pool", "mean16"),
                               ("CRPS, 16-km max pool", "max16"))}
    plots.score_curves(crps, step, "CRPS [mm/h]", out / "crps.png", higher_is_better=False)
    any_scores = next(iter(scores.values()))
    lead = REPORT_LEADS[-1] - 1
    psd = {"observed": any_scores.psd(observed=True)[lead], **{n: s.psd()[lead] for n, s in scores.items()}}
    plots.spectra(psd, any_scores.wavelength, f"+{(lead + 1) * step:.0f} min", out / "psd.png")
    plots.frames_panel(rows, [k - 1 for k in (1, *REPORT_LEADS)], step, out / "frames.png")
