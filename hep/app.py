"""What the hep domain offers the front door: its datasets, its `physml hep` commands and its demo step."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from hep.calo import data as calo_data
from hep.calo import evaluate as calo_evaluate
from hep.calo import model as calo_model
from hep.jets import evaluate as jets_evaluate
from hep.jets import generate as jets_generate
from hep.jets import train as jets_train
from hep.tracking import data as tracking_data
from hep.tracking import evaluate as tracking_evaluate
from hep.tracking import model as tracking_model

DATASETS = [calo_data.CALO, tracking_data.TRACKING, jets_generate.JETS]


def add_commands(group: argparse._SubParsersAction) -> None:
    """``physml hep train-calo | evaluate-calo | train-tracking | evaluate-tracking | train-jets | evaluate-jets``."""
    p = group.add_parser("train-calo", help="train the conditional diffusion shower generator on calo showers",
                         description=calo_model.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="runs/data/calo", help="folder with train.h5 (physml data generate calo)")
    p.add_argument("--run-dir", default="runs/calo", help="where checkpoints, metrics and plots go")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32, help="global batch (showers), split over torchrun ranks")
    p.add_argument("--lr", type=float, default=1e-3, help="peak LR of the cosine schedule")
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64], help="U-Net width per level")
    p.add_argument("--max-showers", type=int, default=None, help="train on the first showers only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --run-dir")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(run=_train_calo)
    p = group.add_parser("evaluate-calo", help="score a trained shower generator against GFlash showers "
                                               "(CaloChallenge metrics, pictures, timing)",
                         description=calo_evaluate.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", default="runs/calo", help="the train-calo run folder")
    p.add_argument("--data", default=None, help="reference shower file (default: test.h5 of the run's data)")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/eval)")
    p.add_argument("--showers", type=int, default=500, help="how many reference showers to match")
    p.add_argument("--samplers", nargs="+", default=[f"{n}:{s}" for n, s in calo_evaluate.DEFAULT_SAMPLERS],
                   help="SAMPLER:STEPS with SAMPLER one of ddpm, ddim, edm")
    p.add_argument("--classifier-hidden", type=int, default=512, help="hidden units of the classifier test")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_evaluate_calo)
    _add_tracking_commands(group)
    _add_jet_commands(group)


def _add_jet_commands(group: argparse._SubParsersAction) -> None:
    from hep.jets.models import MODELS

    p = group.add_parser("train-jets", help="train a jet tagger (ParticleNet, ParT, Perceiver, PFN) on jet files",
                         description=jets_train.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="runs/data/jets", help="folder with jets_*.root (physml data generate jets)")
    p.add_argument("--model", default="particlenet-lite", choices=sorted(MODELS))
    p.add_argument("--run-dir", default=None, help="default: runs/jets/MODEL")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-jets", type=int, default=None, help="use only the first jets of the files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(run=_train_jets)
    p = group.add_parser("evaluate-jets", help="every trained tagger and the substructure baselines on test jets",
                         description=jets_evaluate.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", help="train-jets run folders")
    p.add_argument("--data", default=None, help="jet folder (default: the first run's)")
    p.add_argument("--out", default="runs/jets/eval")
    p.set_defaults(run=_evaluate_jets)


def _train_jets(args: argparse.Namespace) -> None:
    run = jets_train.JetRun(data_dir=args.data, model=args.model, max_jets=args.max_jets)
    t = run.trainer
    t.run_dir = args.run_dir or f"runs/jets/{args.model}"
    t.steps, t.batch_size, t.lr, t.seed, t.resume, t.progress = (args.steps, args.batch_size, args.lr, args.seed,
                                                                 args.resume, args.progress)
    t.checkpoint_every = min(t.checkpoint_every, max(1, args.steps // 4))
    t.eval_every = min(t.eval_every, max(1, args.steps // 4))
    t.warmup_steps = min(t.warmup_steps, args.steps // 10)
    metrics = jets_train.train(run)
    if os.environ.get("RANK", "0") == "0":
        print(f"validation loss {metrics.get('loss', float('nan')):.4g}, accuracy "
              f"{metrics.get('accuracy', float('nan')):.4f}; run folder {t.run_dir}")


def _evaluate_jets(args: argparse.Namespace) -> None:
    data = args.data or jets_train.load_tagger(args.run_dirs[0])[1]["data_dir"]
    table = jets_evaluate.evaluate(args.run_dirs, data, args.out)
    print(jets_evaluate.format_table(table))
    print(f"ROC curves and metrics in {args.out}")


def _add_tracking_commands(group: argparse._SubParsersAction) -> None:
    p = group.add_parser("train-tracking", help="train the interaction-network edge classifier on tracking events",
                         description=tracking_model.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="runs/data/tracking", help="folder with train.root and valid.root")
    p.add_argument("--data-config", default=None, help="YAML branch map for ROOT files from elsewhere "
                                                       "(default: hep/tracking/events.yaml)")
    p.add_argument("--run-dir", default="runs/tracking")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=2, help="global batch (events), split over torchrun ranks")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--message-passing-steps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --run-dir")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(run=_train_tracking)
    p = group.add_parser("evaluate-tracking", help="GNN tracking against the Hough transform on test events",
                         description=tracking_evaluate.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", default="runs/tracking", help="the train-tracking run folder")
    p.add_argument("--data", default=None, help="folder with valid.root and test.root (default: the run's data)")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/eval)")
    p.add_argument("--events", type=int, default=None, help="use only the first events of each file")
    p.add_argument("--data-config", default=None, help="YAML branch map (default: the training run's)")
    p.set_defaults(run=_evaluate_tracking)


def _train_tracking(args: argparse.Namespace) -> None:
    run = tracking_model.TrackingRun(data_dir=args.data, data_config=args.data_config)
    run.model.latent, run.model.steps = args.latent, args.message_passing_steps
    t = run.trainer
    t.run_dir, t.steps, t.batch_size, t.lr, t.seed, t.resume, t.progress = (
        args.run_dir, args.steps, args.batch_size, args.lr, args.seed, args.resume, args.progress)
    t.checkpoint_every = min(t.checkpoint_every, max(1, args.steps // 3))
    t.eval_every = min(t.eval_every, max(1, args.steps // 3))
    metrics = tracking_model.train(run)
    if os.environ.get("RANK", "0") == "0":
        print(f"validation edge loss {metrics.get('loss', float('nan')):.4g}, accuracy "
              f"{metrics.get('accuracy', float('nan')):.4f}; run folder {t.run_dir}")


def _evaluate_tracking(args: argparse.Namespace) -> None:
    _, config = tracking_model.load_model(args.run_dir)
    data = Path(args.data or config["data_dir"])
    out = Path(args.out or Path(args.run_dir) / "eval")
    table = tracking_evaluate.evaluate(args.run_dir, data / "test.root", data / "valid.root", out, args.events,
                                       args.data_config or config.get("data_config"))
    print(tracking_evaluate.format_table(table))
    print(f"metrics, ROC, efficiency curves and an event display in {out}")


def _train_calo(args: argparse.Namespace) -> None:
    run = calo_model.CaloRun(data_dir=args.data, max_showers=args.max_showers)
    run.model.channels = tuple(args.channels)
    t = run.trainer
    t.run_dir, t.steps, t.batch_size, t.lr, t.seed, t.resume, t.progress = (
        args.run_dir, args.steps, args.batch_size, args.lr, args.seed, args.resume, args.progress)
    t.checkpoint_every = min(t.checkpoint_every, max(1, args.steps // 4))
    t.warmup_steps = min(t.warmup_steps, args.steps // 10)
    metrics = calo_model.train(run)
    if os.environ.get("RANK", "0") == "0":
        print(f"final training loss {metrics.get('loss', float('nan')):.4g}; run folder {t.run_dir}")


def _samplers(specs: list[str]) -> tuple[tuple[str, int], ...]:
    try:
        return tuple((name, int(steps)) for name, steps in (spec.split(":") for spec in specs))
    except ValueError:
        raise ValueError(f"--samplers takes SAMPLER:STEPS items (e.g. ddim:50), got {' '.join(specs)}") from None


def _evaluate_calo(args: argparse.Namespace) -> None:
    reference = args.data
    if reference is None:
        _, config = calo_model.load_model(args.run_dir)
        reference = Path(config["data_dir"]) / "test.h5"
    out = Path(args.out or Path(args.run_dir) / "eval")
    table = calo_evaluate.evaluate(args.run_dir, reference, out, args.showers, _samplers(args.samplers),
                                   seed=args.seed, classifier_hidden=args.classifier_hidden)
    print(calo_evaluate.format_table(table))
    print(f"generated showers (CaloChallenge HDF5), pictures and metrics in {out}")


def demo(out: Path, seed: int = 0) -> list[dict]:
    """Tracking (GNN against Hough on simulated events), calorimeter showers (diffusion against GFlash) and
    jet tagging (ParticleNet-Lite against jet substructure on the committed jet sample)."""
    return _demo_tracking(out, seed) + _demo_calo(out, seed) + _demo_jets(out, seed)


def _demo_tracking(out: Path, seed: int) -> list[dict]:
    """Simulated barrel events in ROOT, an edge classifier trained for a minute, tracks against Hough."""
    data_dir, run_dir = out / "data" / "tracking", out / "tracking"
    tracking_data.generate_tracking(data_dir, seed=seed, events=16, particles=500)
    run = tracking_model.TrackingRun(data_dir=str(data_dir))
    t = run.trainer
    t.run_dir, t.steps, t.seed, t.eval_every, t.checkpoint_every = str(run_dir), 300, seed, 300, 300
    tracking_model.train(run)
    table = tracking_evaluate.evaluate(run_dir, data_dir / "test.root", data_dir / "valid.root", run_dir / "eval")
    gnn, hough = table["GNN (interaction network)"], table["Hough transform"]
    return [{"domain": "hep", "part": "GNN tracking, 500 particles/event (300 steps)",
             "metric": "tracking efficiency, pT > 1 GeV (double majority)", "value": f"{gnn['efficiency']:.3f}",
             "reference": f"Hough {hough['efficiency']:.3f}", "output": str(run_dir / "eval")},
            {"domain": "hep", "part": "GNN tracking", "metric": "TrackML score",
             "value": f"{gnn['trackml_score']:.3f}", "reference": f"Hough {hough['trackml_score']:.3f}"}]


def _demo_calo(out: Path, seed: int) -> list[dict]:
    """GFlash showers, a tiny diffusion generator trained for a minute, scored against GFlash's own floor."""
    data_dir, run_dir = out / "data" / "calo", out / "calo"
    calo_data.generate_calo(data_dir, seed=seed, train=800, test=128)
    run = calo_model.CaloRun(data_dir=str(data_dir))
    run.model.channels = (8, 16)
    t = run.trainer
    t.run_dir, t.steps, t.batch_size, t.seed, t.warmup_steps, t.checkpoint_every = str(run_dir), 150, 16, seed, 10, 150
    calo_model.train(run)
    table = calo_evaluate.evaluate(run_dir, data_dir / "test.h5", run_dir / "eval", n_showers=128,
                                   samplers=(("ddim", 10), ("edm", 5)), seed=seed, classifier_hidden=64,
                                   gflash_batches=(1, 100))
    floor, ddim = table["GFlash (new seed)"], table["ddim 10 steps"]
    return [{"domain": "hep", "part": "calo shower diffusion (150 steps, DDIM 10)",
             "metric": "classifier AUC, high-level features (0.5 = indistinguishable)",
             "value": f"{ddim['auc_high']:.3f}", "reference": f"GFlash vs GFlash {floor['auc_high']:.3f}",
             "output": str(run_dir / "eval")},
            {"domain": "hep", "part": "calo shower generation", "metric": "seconds per shower (batch 100)",
             "value": f"{ddim['seconds_per_shower_b100']:.4f}",
             "reference": f"GFlash {floor['seconds_per_shower_b100']:.5f}"}]


def _demo_jets(out: Path, seed: int) -> list[dict]:
    """ParticleNet-Lite trained for a minute on the committed 6000-jet sample, against the substructure cut."""
    from hep.jets import SAMPLE_DIR

    run_dir = out / "jets" / "particlenet-lite"
    run = jets_train.JetRun(data_dir=str(SAMPLE_DIR), model="particlenet-lite")
    t = run.trainer
    t.run_dir, t.steps, t.seed, t.warmup_steps, t.checkpoint_every, t.eval_every = str(run_dir), 300, seed, 30, 300, 300
    jets_train.train(run)
    table = jets_evaluate.evaluate([run_dir], SAMPLE_DIR, out / "jets" / "eval")
    tagger, cut = table["particlenet-lite (particlenet-lite)"], table["soft-drop mass window + tau3/tau2 cut"]
    return [{"domain": "hep", "part": "top tagging, ParticleNet-Lite (300 steps, 4800 jets)",
             "metric": "test AUC", "value": f"{tagger['auc']:.4f}", "reference": f"m_SD + tau32 cut {cut['auc']:.4f}",
             "output": str(out / "jets" / "eval")},
            {"domain": "hep", "part": "top tagging", "metric": "1/eps_B at eps_S = 0.5",
             "value": f"{tagger['rejection_at_0.5']:.0f}", "reference": f"cut {cut['rejection_at_0.5']:.0f}"}]
