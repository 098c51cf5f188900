"""Verify nowcasters on held-out radar: every method forecasts the same test crops and is scored alike.

Methods: persistence, pysteps extrapolation, pysteps S-PROG, pysteps STEPS (ensemble) and each trained model
(DGMR and the latent nowcaster: ensembles of latent draws; U-Net: one member). Scores
(:mod:`weather.metrics`): CSI at 1, 4 and 8 mm/h per lead, at 1 km and after 4-km max pooling; CRPS per lead,
per pixel and average/max pooled at 4 and 16 km; radially averaged PSD against the observation's; seconds per
forecast. Every window of the test events is scored (every ``stride``-th start, no importance sampling: the
scores are plain averages over the test archive; the windows are listed in ``crops.json``).

Every method forecasts the whole ``crop`` (default: the full image, cut to a multiple of 32 pixels) and is
scored on its centre, ``margin`` km in from every side (default: a quarter of the crop): extrapolation cannot
bring in rain from outside its domain, and a verification area inside the forecast domain keeps that edge
effect out of every method's scores alike.

Writes ``metrics.json``, ``table.md``, ``csi.png``, ``crps.png``, ``fss.png``, ``rank_histogram.png``,
``psd.png`` and ``frames.png`` to ``out``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from datasets.atomic import atomic_open, refuse_overwriting_inputs
from datasets.radar import open_radar, radar_files
from training.pretrained import resolve
from training.report import Column, Report
from weather import plots
from weather.baselines import Extrapolation, Persistence, SProg, Steps
from weather.metrics import Scores, reliability_index
from weather.samples import RadarSamples, SamplingConfig, split_folder
from weather.train import SHIPPED, load_nowcaster

REPORT_LEADS = (6, 12, 18)    # 30, 60 and 90 minutes


THRESHOLDS = (1, 4, 8)         # mm/h


def methods(run_dirs: list[str], leads: int, steps_baseline: bool = True, device: str = "cpu") -> dict[str, object]:
    """``{key: nowcaster}``: the baselines, then one model per run folder (keyed by the folder's name) on
    ``device``."""
    found: dict[str, object] = {"persistence": Persistence(leads), "extrapolation": Extrapolation(leads),
                                "sprog": SProg(leads)}
    if steps_baseline:
        found["steps"] = Steps(leads)
    for run_dir in run_dirs:
        found[Path(run_dir).name] = load_nowcaster(run_dir, device)[0]
    return found


def evaluate(run_dirs: tuple[str, ...] = (), data: str = "runs/data/radar", out: str = "runs/weather/eval",
             crops: int = 64, crop: int | None = None, margin: int | None = None, members: int = 6,
             seed: int = 0, steps_baseline: bool = True, progress: bool = True, device: str = "cpu",
             pretrained: str | None = None) -> Report:
    """Score persistence, extrapolation, STEPS and each trained nowcaster on the same test windows; table.md,
    metrics.json (per-lead curves under ``extra``), crops.json and pictures go to ``out``.

    Args:
        run_dirs: ``train dgmr`` / ``train unet`` run folders (none: baselines only).
        data: archive with a test/ folder.
        out: output folder.
        crops: test windows to score (at most).
        crop: forecast domain [km], a multiple of 32 (default: the whole image).
        margin: km left out of the scores on every side (default: a quarter of the crop).
        members: ensemble members of DGMR and STEPS.
        seed: seeds the stochastic methods.
        steps_baseline: include pysteps STEPS (the slowest baseline).
        progress: show a progress bar.
        device: where the models run: cpu (default: the times per forecast are set against the CPU baselines'),
            auto, cuda or cuda:N.
        pretrained: also score this shipped model (``physml models list``), keyed by its name.
    """
    if pretrained is not None:
        run_dirs = (*run_dirs, str(resolve(None, pretrained, SHIPPED)))
    out_dir = Path(out)
    refuse_overwriting_inputs(out_dir, [data])
    if crop is None:
        grid = open_radar(radar_files(split_folder(data, "test"))[0])
        crop = min(grid.sizes["y"], grid.sizes["x"]) // 32 * 32
    margin = crop // 4 if margin is None else margin
    if crop % 32 or not 0 <= 2 * margin < crop:
        raise ValueError(f"crop must be a multiple of 32 and margin below crop / 2, got {crop} and {margin}")
    inner = slice(margin, crop - margin)
    cfg = SamplingConfig(crop=crop, q_min=1.0, candidates=1)  # q = 1: every window, once
    windows = RadarSamples(split_folder(data, "test"), cfg, seed=seed + 2)
    windows.crops = windows.crops[:crops]
    nowcasters = methods(list(run_dirs), cfg.leads, steps_baseline, device)
    scores = {key: Scores() for key in nowcasters}
    seconds = {key: 0.0 for key in nowcasters}
    showcase: tuple[float, dict] = (-1.0, {})
    for i in tqdm(range(len(windows)), desc="test crops", disable=not progress):
        frames, valid = windows.sequence(i)
        frames = np.nan_to_num(frames, nan=0.0)
        context, observed = frames[:cfg.context], frames[cfg.context:, inner, inner]
        valid = valid[inner, inner]
        shown = {"observed": observed}
        for key, m in nowcasters.items():
            t0 = time.perf_counter()
            forecast = m.forecast(context, members if m.stochastic else 1, seed=seed + i)[..., inner, inner]
            seconds[key] += time.perf_counter() - t0
            scores[key].add(forecast, observed, valid)
            shown[m.name] = forecast[0]
        wet = float((observed >= 1.0).mean())
        if wet > showcase[0]:
            showcase = (wet, shown)
    step = float(windows.datasets[0]["time"].attrs["stepsize"]) / 60.0  # minutes
    report = Report(f"Nowcasts of {len(windows)} test windows of {data}", columns(step),
                    info={"crops": len(windows), "crop_km": crop, "margin_km": margin, "members": members,
                          "seed": seed, "data_dir": str(data), "runs": list(run_dirs),
                          "sampling": dataclasses.asdict(cfg), "out": str(out_dir)})
    report.extra["curves"] = {key: curves(s, seconds[key] / len(windows)) for key, s in scores.items()}
    for key, m in nowcasters.items():
        report.add(key, m.name, headline(report.extra["curves"][key]))
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "crops.json") as fh:
        json.dump([dataclasses.asdict(c) | {"file": str(windows.files[c.file])} for c in windows.crops], fh)
    report.write(out_dir)
    _figures({m.name: scores[key] for key, m in nowcasters.items()}, showcase[1], step, out_dir)
    return report


def curves(s: Scores, seconds: float) -> dict:
    """Every score per lead time (and the PSDs per wavelength), as lists."""
    csi = {f"{thr:g}": s.csi(thr).tolist() for thr in s.thresholds}
    pooled = {f"{thr:g}": s.csi(thr, pooled=True).tolist() for thr in s.thresholds}
    median, mean = ({f"{thr:g}": s.summary_csi(thr, kind).tolist() for thr in s.thresholds}
                    for kind in ("median", "mean"))
    crps = {key: s.mean_crps(key).tolist() for key in s.crps}
    fss = {f"{thr:g}": {f"{scale}": s.fss(thr, scale).tolist() for scale in s.fss_scales} for thr in s.thresholds}
    ranks = s.rank_histogram()
    return {"csi": csi, "csi_pooled4": pooled, "csi_median": median, "csi_mean": mean, "crps": crps, "fss": fss,
            "rank_histogram": None if ranks is None else ranks.tolist(),
            "reliability_index": None if ranks is None else reliability_index(ranks).tolist(), "psd": s.psd().tolist(),
            "psd_observed": s.psd(observed=True).tolist(), "wavelength_km": s.wavelength.tolist(),
            "seconds_per_forecast": seconds}


def headline(c: dict) -> dict[str, float]:
    """The table's numbers from the curves: CSI at the report leads, CRPS means over the leads."""
    values = {f"csi{thr}_{k}": c["csi"][str(thr)][k - 1] for thr in THRESHOLDS for k in REPORT_LEADS}
    values |= {f"csi4_pool4_{k}": c["csi_pooled4"]["4"][k - 1] for k in REPORT_LEADS}
    values |= {f"csi1_{kind}_{k}": c[f"csi_{kind}"]["1"][k - 1] for kind in ("median", "mean") for k in REPORT_LEADS}
    values |= {f"fss1_16_{k}": c["fss"]["1"]["16"][k - 1] for k in REPORT_LEADS}
    values |= {f"crps_{key}": float(np.mean(v)) for key, v in c["crps"].items()}
    if c["reliability_index"] is not None:
        values["reliability"] = float(np.mean(c["reliability_index"]))
    return values | {"seconds_per_forecast": c["seconds_per_forecast"]}


def columns(step: float) -> list[Column]:
    """CSI at 1, 4 and 8 mm/h (and 4 mm/h after 4-km max pooling) at +30/60/90 min; CRPS; time."""
    cols = [Column(f"csi{thr}_{k}", f"CSI {thr} mm/h +{k * step:.0f} min") for thr in THRESHOLDS for k in REPORT_LEADS]
    cols += [Column(f"csi4_pool4_{k}", f"CSI 4 mm/h, 4-km max pool +{k * step:.0f} min") for k in REPORT_LEADS]
    cols += [Column(f"csi1_{kind}_{k}", f"CSI 1 mm/h, ensemble {kind} +{k * step:.0f} min")
             for kind in ("median", "mean") for k in REPORT_LEADS]
    cols += [Column(f"fss1_16_{k}", f"FSS 1 mm/h, 16 km +{k * step:.0f} min") for k in REPORT_LEADS]
    cols += [Column("crps_pixel", "CRPS (mean over leads)", "mm/h"),
             Column("crps_max16", "CRPS max-pool 16 km", "mm/h"), Column("crps_mean16", "CRPS avg-pool 16 km", "mm/h"),
             Column("reliability", "rank histogram RI (0 flat, mean over leads)"),
             Column("seconds_per_forecast", "time per forecast", "s", ".2f")]
    return cols


def _figures(scores: dict[str, Scores], rows: dict[str, np.ndarray], step: float, out: Path) -> None:
    csi = {f"CSI >= {thr:g} mm/h": {n: s.csi(thr) for n, s in scores.items()} for thr in (1.0, 4.0, 8.0)}
    csi["CSI >= 4 mm/h, 4-km max pool"] = {n: s.csi(4.0, pooled=True) for n, s in scores.items()}
    plots.score_curves(csi, step, "CSI", out / "csi.png")
    crps = {title: {n: s.mean_crps(key) for n, s in scores.items()}
            for title, key in (("CRPS per pixel", "pixel"), ("CRPS, 16-km average pool", "mean16"),
                               ("CRPS, 16-km max pool", "max16"))}
    plots.score_curves(crps, step, "CRPS [mm/h]", out / "crps.png", higher_is_better=False)
    lead = REPORT_LEADS[1] - 1
    fss = {f"FSS >= {thr:g} mm/h, +{(lead + 1) * step:.0f} min": {n: [s.fss(thr, k)[lead] for k in s.fss_scales]
                                                                   for n, s in scores.items()}
           for thr in (1.0, 4.0, 8.0)}
    plots.scale_curves(fss, next(iter(scores.values())).fss_scales, out / "fss.png")
    ranks = {n: s.rank_histogram() for n, s in scores.items() if s.rank_histogram() is not None}
    if ranks:
        plots.rank_histograms(ranks, [k - 1 for k in REPORT_LEADS], step, out / "rank_histogram.png")
    any_scores = next(iter(scores.values()))
    lead = REPORT_LEADS[-1] - 1
    psd = {"observed": any_scores.psd(observed=True)[lead], **{n: s.psd()[lead] for n, s in scores.items()}}
    plots.spectra(psd, any_scores.wavelength, f"+{(lead + 1) * step:.0f} min", out / "psd.png")
    plots.frames_panel(rows, [k - 1 for k in (1, *REPORT_LEADS)], step, out / "frames.png")
