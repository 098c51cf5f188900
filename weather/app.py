"""What the weather domain offers the front door: the radar dataset, recipes, commands and demo step."""
from __future__ import annotations

from pathlib import Path

from training.recipe import Command, train
from training.report import DemoRow
from weather import evaluate, nowcast, synthetic
from weather.samples import SamplingConfig
from weather.train import AUTOENCODER_RECIPE, DGMR_RECIPE, LDM_RECIPE, SHIPPED, UNET_RECIPE, UNetRun, calibrate

DATASETS = [synthetic.RADAR]
RECIPES = [DGMR_RECIPE, UNET_RECIPE, AUTOENCODER_RECIPE, LDM_RECIPE]
PRETRAINED = SHIPPED
COMMANDS = [Command("evaluate", "CSI, FSS, CRPS, rank histograms and PSD of trained nowcasters and the baselines "
                    "on test windows", evaluate.evaluate),
            Command("nowcast", "forecast from a radar file with a trained model or a baseline", nowcast.nowcast),
            Command("calibrate", "fit a latent nowcaster's small-scale weights and ensemble spread on the "
                    "validation split", calibrate)]


def demo(out: Path, seed: int = 0) -> list[DemoRow]:
    """The shipped latent-diffusion nowcaster on a fresh synthetic radar archive (a new seed, 128 km) against
    persistence, extrapolation and STEPS, and one short training from scratch (the U-Net on extrapolation, 300
    steps on 64 km crops) to show that training works."""
    ldm = SHIPPED["latent-diffusion"]
    data = out / "data" / "radar"
    check = ldm.check  # the card's check archive (a seed the shipped model never saw), shifted by the demo's seed
    synthetic.generate_radar(data, seed=seed + check["seed"], events=check["events"], frames=check["frames"],
                             size=check["size"], progress=False)
    folder = out / "weather"
    unet = UNetRun(data_dir=str(data), sampling=SamplingConfig(crop=64))
    unet.trainer = unet.trainer.for_demo(str(folder / UNET_RECIPE.name), 300, seed, progress=False, batch_size=4)
    train(UNET_RECIPE, unet)
    report = evaluate.evaluate([unet.trainer.run_dir], str(data), str(folder / "eval"),
                               crops=check["crops"], members=check["members"],
                               seed=seed, progress=False, pretrained=ldm.name)
    extrapolation, steps, sprog, persistence = (report[key] for key in ("extrapolation", "steps", "sprog",
                                                                         "persistence"))
    learned = report[ldm.name]
    return [DemoRow("weather", f"latent diffusion ensemble, 4 members ({ldm.provenance()})",
                    "CRPS mm/h (mean over 18 leads, lower is better)", learned["crps_pixel"],
                    f"STEPS {steps['crps_pixel']:.3f}, extrapolation {extrapolation['crps_pixel']:.3f}",
                    output=str(folder / "eval"), figure=str(folder / "eval" / "csi.png")),
            DemoRow("weather", "latent diffusion ensemble, rain peaks", "CRPS of 16 km max-pooled rain mm/h",
                    learned["crps_max16"], f"STEPS {steps['crps_max16']:.3f}"),
            DemoRow("weather", "latent diffusion, ensemble median", "CSI >= 1 mm/h at +30 min",
                    learned["csi1_median_6"], f"S-PROG {sprog['csi1_median_6']:.3f}, extrapolation "
                    f"{extrapolation['csi1_median_6']:.3f}"),
            DemoRow("weather", "U-Net correcting extrapolation, trained here (300 steps; the reference run takes "
                    "1,200 of batch 8)", "CRPS mm/h (a deterministic forecast's: its MAE)",
                    report["unet"]["crps_pixel"], f"persistence {persistence['crps_pixel']:.3f}, extrapolation "
                    f"{extrapolation['crps_pixel']:.3f}")]
