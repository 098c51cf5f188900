"""What the weather domain offers the front door: the radar dataset, recipes, commands and demo step."""
from __future__ import annotations

from pathlib import Path

from training.recipe import Command, train
from training.report import DemoRow
from weather import evaluate, nowcast, synthetic
from weather.samples import SamplingConfig
from weather.train import (AUTOENCODER_RECIPE, DGMR_RECIPE, LDM_RECIPE, UNET_RECIPE, LatentNowcastRun,
                           RainAutoencoderRun, UNetRun)

DATASETS = [synthetic.RADAR]
RECIPES = [DGMR_RECIPE, UNET_RECIPE, AUTOENCODER_RECIPE, LDM_RECIPE]
COMMANDS = [Command("evaluate", "CSI, FSS, CRPS, rank histograms and PSD of trained nowcasters and the baselines "
                    "on test windows", evaluate.evaluate),
            Command("nowcast", "forecast from a radar file with a trained model or a baseline", nowcast.nowcast)]


def demo(out: Path, seed: int = 0) -> list[DemoRow]:
    """A small synthetic radar archive; the latent-diffusion nowcaster (its autoencoder, then itself) and the
    U-Net trained for about a minute each on 64 km crops, scored against persistence, extrapolation and STEPS
    on test windows."""
    data = out / "data" / "radar"
    synthetic.generate_radar(data, seed=seed, events=8, frames=30, size=64, progress=False)
    sampling = SamplingConfig(crop=64)
    folder = out / "weather"
    unet = UNetRun(data_dir=str(data), sampling=sampling)
    autoencoder = RainAutoencoderRun(data_dir=str(data), sampling=sampling)
    ldm = LatentNowcastRun(data_dir=str(data), autoencoder=str(folder / AUTOENCODER_RECIPE.name), sampling=sampling)
    for run, recipe, steps in ((unet, UNET_RECIPE, 300), (autoencoder, AUTOENCODER_RECIPE, 300),
                               (ldm, LDM_RECIPE, 600)):
        run.trainer = run.trainer.for_demo(str(folder / recipe.name), steps, seed, progress=False, batch_size=4)
        train(recipe, run)
    report = evaluate.evaluate([unet.trainer.run_dir, ldm.trainer.run_dir], str(data), str(folder / "eval"),
                               crops=8, members=4, seed=seed, progress=False)
    extrapolation, steps, persistence = (report[key] for key in ("extrapolation", "steps", "persistence"))
    return [DemoRow("weather", "latent diffusion on extrapolation (300 + 600 steps), ensemble median",
                    "CSI >= 1 mm/h at +30 min", report["ldm"]["csi1_median_6"],
                    f"extrapolation {extrapolation['csi1_median_6']:.3f}, persistence "
                    f"{persistence['csi1_median_6']:.3f}", output=str(folder / "eval"),
                    figure=str(folder / "eval" / "csi.png")),
            DemoRow("weather", "latent diffusion ensemble (4 members)", "CRPS mm/h (mean over leads)",
                    report["ldm"]["crps_pixel"], f"STEPS {steps['crps_pixel']:.3f}, extrapolation "
                    f"{extrapolation['crps_pixel']:.3f}"),
            DemoRow("weather", "U-Net nowcast (300 steps)", "CSI >= 1 mm/h at +30 min", report["unet"]["csi1_6"],
                    f"persistence {persistence['csi1_6']:.3f}")]
