"""What the weather domain offers the front door: the radar dataset, recipes, commands and demo step."""
from __future__ import annotations

from pathlib import Path

from training.recipe import Command, train
from training.report import DemoRow
from weather import evaluate, nowcast, synthetic
from weather.train import AUTOENCODER_RECIPE, DGMR_RECIPE, LDM_RECIPE, UNET_RECIPE, DGMRRun, UNetRun

DATASETS = [synthetic.RADAR]
RECIPES = [DGMR_RECIPE, UNET_RECIPE, AUTOENCODER_RECIPE, LDM_RECIPE]
COMMANDS = [Command("evaluate", "CSI, CRPS and PSD of trained nowcasters and the baselines on test windows",
                    evaluate.evaluate),
            Command("nowcast", "forecast from a radar file with a trained model or a baseline", nowcast.nowcast)]


def demo(out: Path, seed: int = 0) -> list[DemoRow]:
    """A small synthetic radar archive, DGMR and the U-Net trained for a minute each, scored against
    persistence, extrapolation and STEPS on test windows."""
    data = out / "data" / "radar"
    synthetic.generate_radar(data, seed=seed, events=8, frames=30, size=64, progress=False)
    runs = [DGMRRun(data_dir=str(data)), UNetRun(data_dir=str(data))]
    for run, recipe, steps in zip(runs, (DGMR_RECIPE, UNET_RECIPE), (40, 300)):
        run.trainer = run.trainer.for_demo(str(out / "weather" / recipe.name), steps, seed, progress=False)
        train(recipe, run)
    report = evaluate.evaluate([r.trainer.run_dir for r in runs], str(data), str(out / "weather" / "eval"), crops=8,
                               members=4, seed=seed, progress=False)
    csi, crps = "csi1_6", "crps_pixel"
    return [DemoRow("weather", "DGMR nowcast (40 generator steps, 64 km crops)", "CSI >= 1 mm/h at +30 min",
                    report["dgmr"][csi], f"extrapolation {report['extrapolation'][csi]:.3f}, persistence "
                    f"{report['persistence'][csi]:.3f}", output=str(out / "weather" / "eval")),
            DemoRow("weather", "U-Net nowcast (300 steps)", "CSI >= 1 mm/h at +30 min", report["unet"][csi],
                    f"STEPS {report['steps'][csi]:.3f}"),
            DemoRow("weather", "DGMR ensemble (4 members)", "CRPS mm/h (mean over leads)", report["dgmr"][crps],
                    f"STEPS {report['steps'][crps]:.3f}, persistence {report['persistence'][crps]:.3f}")]
