"""What the weather domain offers the front door: the radar dataset, `physml weather` commands, a demo step."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from weather import evaluate, nowcast, synthetic, train
from weather.samples import SamplingConfig

DATASETS = [synthetic.RADAR]


def add_commands(group: argparse._SubParsersAction) -> None:
    """``physml weather train | nowcast | evaluate``."""
    p = group.add_parser("train", help="train DGMR (or the U-Net baseline) on the radar archive",
                         description=train.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="runs/data/radar", help="archive with train/ and valid/ (physml data "
                                                             "generate radar)")
    p.add_argument("--model", default="dgmr", choices=train.MODELS)
    p.add_argument("--run-dir", default=None, help="default: runs/weather/MODEL")
    p.add_argument("--steps", type=int, default=2000, help="generator steps (DGMR) or steps (U-Net)")
    p.add_argument("--batch-size", type=int, default=4, help="global batch (crops), split over torchrun ranks")
    p.add_argument("--crop", type=int, default=None, help="training crop [km], a multiple of 32 (default: the "
                                                          "paper's 256 on a GPU, 64 on a CPU)")
    p.add_argument("--base", type=int, default=None, help="DGMR width unit (default: the paper's 24 on a GPU, "
                                                          "4 on a CPU)")
    p.add_argument("--lr", type=float, default=None, help="generator LR (default: DGMR 5e-5, U-Net 1e-3)")
    p.add_argument("--d-lr", type=float, default=2e-4, help="DGMR discriminator LR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --run-dir")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(run=_train)
    p = group.add_parser("nowcast", help="forecast from a radar file with a trained model or a baseline",
                         description=nowcast.nowcast.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="a radar file (.nc or .zarr) holding the context frames")
    p.add_argument("--out", required=True, help="forecast file (.nc)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-dir", help="a physml weather train run folder")
    which.add_argument("--baseline", choices=sorted(nowcast.BASELINES))
    p.add_argument("--time", default=None, help="reference time, ISO 8601 (default: the 4th frame)")
    p.add_argument("--members", type=int, default=6, help="ensemble members (stochastic methods)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_nowcast)
    p = group.add_parser("evaluate", help="CSI, CRPS and PSD of trained models and the baselines on test crops",
                         description=evaluate.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="*", help="physml weather train run folders (none: baselines only)")
    p.add_argument("--data", default="runs/data/radar", help="archive with a test/ folder")
    p.add_argument("--out", default="runs/weather/eval")
    p.add_argument("--crops", type=int, default=64, help="test windows to score (at most)")
    p.add_argument("--crop", type=int, default=None, help="forecast domain [km], a multiple of 32 (default: "
                                                          "the whole image)")
    p.add_argument("--margin", type=int, default=None, help="km left out of the scores on every side "
                                                            "(default: a quarter of the crop)")
    p.add_argument("--members", type=int, default=6, help="ensemble members of DGMR and STEPS")
    p.add_argument("--steps", action=argparse.BooleanOptionalAction, default=True, help="include STEPS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(run=_evaluate)


def _train(args: argparse.Namespace) -> None:
    gpu = torch.cuda.is_available()
    crop, base = args.crop or (256 if gpu else 64), args.base or (24 if gpu else 4)
    run = train.NowcastRun(data_dir=args.data, model=args.model, sampling=SamplingConfig(crop=crop))
    run.dgmr.base, run.dgmr.temporal_crop = base, min(128, crop)
    t = run.trainer
    t.run_dir = args.run_dir or f"runs/weather/{args.model}"
    t.steps, t.batch_size, t.seed, t.resume, t.progress, t.d_lr = (args.steps, args.batch_size, args.seed,
                                                                   args.resume, args.progress, args.d_lr)
    t.lr = args.lr or t.lr
    t.checkpoint_every = min(t.checkpoint_every, max(1, args.steps // 4))
    t.eval_every = min(t.eval_every, max(1, args.steps // 4))
    metrics = train.train(run)
    if os.environ.get("RANK", "0") == "0":
        print(f"validation grid-cell loss {metrics.get('loss', float('nan')):.4g}, MAE "
              f"{metrics.get('mae', float('nan')):.4g} mm/h; run folder {t.run_dir}")


def _nowcast(args: argparse.Namespace) -> None:
    path = nowcast.nowcast(args.source, args.out, run_dir=args.run_dir, baseline=args.baseline,
                           reference_time=args.time, members=args.members, seed=args.seed)
    print(f"forecast written to {path}")


def _evaluate(args: argparse.Namespace) -> None:
    result = evaluate.evaluate(args.run_dirs, args.data, args.out, crops=args.crops, crop=args.crop,
                               margin=args.margin, members=args.members, seed=args.seed, steps=args.steps, progress=args.progress)
    print(evaluate.format_table(result))
    print(f"metrics, crops and plots (csi.png, crps.png, psd.png, frames.png) in {args.out}")


def demo(out: Path, seed: int = 0) -> list[dict]:
    """A small synthetic radar archive, DGMR and the U-Net trained for a minute each, scored against
    persistence, extrapolation and STEPS on test crops."""
    data_dir = out / "data" / "radar"
    synthetic.generate_radar(data_dir, seed=seed, events=8, frames=30, size=64, progress=False)
    runs = []
    for model, steps in (("dgmr", 40), ("unet", 300)):
        run = train.NowcastRun(data_dir=str(data_dir), model=model, sampling=SamplingConfig(crop=64))
        run.dgmr.base = 4
        t = run.trainer
        t.run_dir, t.steps, t.seed, t.eval_every, t.checkpoint_every, t.progress = (
            str(out / "weather" / model), steps, seed, steps, steps, False)
        train.train(run)
        runs.append(t.run_dir)
    eval_dir = out / "weather" / "eval"
    result = evaluate.evaluate(runs, data_dir, eval_dir, crops=8, members=4, seed=seed, progress=False)
    m = result["methods"]
    names = {k.split(" (")[0]: k for k in m}

    def csi30(name: str) -> str:
        return f"{m[names[name]]['csi']['1'][5]:.3f}"

    def crps(name: str) -> str:
        return f"{sum(m[names[name]]['crps']['pixel']) / len(m[names[name]]['crps']['pixel']):.3f}"

    return [{"domain": "weather", "part": "DGMR nowcast (40 generator steps, 64 km crops)",
             "metric": "CSI >= 1 mm/h at +30 min", "value": csi30("DGMR"),
             "reference": f"extrapolation {csi30('extrapolation')}, persistence {csi30('persistence')}",
             "output": str(eval_dir)},
            {"domain": "weather", "part": "U-Net nowcast (300 steps)", "metric": "CSI >= 1 mm/h at +30 min",
             "value": csi30("U-Net"), "reference": f"STEPS {csi30('STEPS')}"},
            {"domain": "weather", "part": "DGMR ensemble (4 members)", "metric": "CRPS mm/h (mean over leads)",
             "value": crps("DGMR"), "reference": f"STEPS {crps('STEPS')}, persistence {crps('persistence')}"}]
