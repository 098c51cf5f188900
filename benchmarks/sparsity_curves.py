"""Accuracy against sparsity of the runs of a sparse-training study (docs/sparsity.md).

Every run folder of STUDY (trained with and without ``--sparsity``; the dense ones at other widths are the
equal-FLOPs baselines) gets one markdown row: its method and sparsity, non-zero weights, forward FLOPs
(dense, and with zero weights skipped: ``training.sparsity.forward_flops``) and its score, and the study
gets a plot of the score against the effective FLOPs (``STUDY/score_vs_flops.png``), one line per method
and one for the dense networks.

- taggers (``--domain jets``): AUC and 1/eps_B at eps_S = 0.5 from ``STUDY/eval/metrics.json``
  (``physml hep evaluate-jets STUDY/* --out STUDY/eval``); FLOPs per jet on 512 sample jets;
- GNS (``--domain gns``): rolled out here on the first ``--trajectories`` of ``--data`` (fp32): rollout
  position MSE over all steps (mean and spread over trajectories) and at step 20; FLOPs per particle on the
  first window of those trajectories.

Usage: python benchmarks/sparsity_curves.py runs/sparsity
       python benchmarks/sparsity_curves.py runs/sparsity_gns --domain gns --data runs/data/waterdrop/test.h5
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.figures import pyplot, save_figure
from training.recipe import load
from training.sparsity import forward_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path)
    parser.add_argument("--domain", choices=("jets", "gns"), default="jets")
    parser.add_argument("--data", help="gns: the trajectory file to roll out on")
    parser.add_argument("--trajectories", type=int, default=8, help="gns: how many trajectories")
    args = parser.parse_args()
    if args.domain == "jets":
        rows, unit, score = jet_rows(args.study), "MFLOP/jet", "AUC (test jets)"
        print("| run | method | sparsity | non-zero weights | MFLOP/jet dense | effective | AUC | 1/eps_B at 0.5 |")
        print("|---|---|---|---|---|---|---|---|")
    else:
        if args.data is None:
            parser.error("--domain gns needs --data (a trajectory file)")
        rows, unit, score = gns_rows(args.study, args.data, args.trajectories), "kFLOP/particle", \
            "rollout MSE [m^2] (test trajectories)"
        print("| run | method | sparsity | non-zero weights | kFLOP/particle dense | effective | rollout MSE [m^2] | "
              "MSE at 20 steps |")
        print("|---|---|---|---|---|---|---|---|")
    curves: dict[str, list[tuple[float, float]]] = {}
    for key, method, sparsity, nonzero, dense, effective, value, cells in rows:
        print(f"| {key} | {method} | {sparsity:g} | {nonzero} | {dense:.4g} | {effective:.4g} | {cells} |")
        curves.setdefault(method, []).append((effective, value))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method, points in curves.items():
        points.sort()
        ax.plot(*zip(*points), "o-" if method != "dense (width)" else "s--", label=method)
    ax.set(xscale="log", xlabel=f"forward {unit} (zero weights skipped)", ylabel=score)
    if args.domain == "gns":
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, args.study / "score_vs_flops.png")


Row = tuple[str, str, float, int, float, float, float, str]


def describe(model: nn.Module, run: object) -> tuple[str, float, int]:
    """The run's sparse method ("dense (width)" for a dense run), its sparsity and the model's non-zero
    Linear/conv weights."""
    sparse = run.trainer.sparse
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    return (sparse.sparse_method if sparse.sparsity else "dense (width)", sparse.sparsity,
            sum(int((w != 0).sum()) for w in weights))


def jet_rows(study: Path) -> Iterator[Row]:
    from hep.jets import SAMPLE_DIR
    from hep.jets.inputs import load_jets
    from hep.jets.train import RECIPE, jet_files

    rows = json.loads((study / "eval" / "metrics.json").read_text())["rows"]
    jets = load_jets(jet_files(SAMPLE_DIR), limit=512)
    for row in rows:
        run_dir = study / row["key"]
        if not (run_dir / "config.json").exists():
            continue  # a baseline row
        model, run = load(run_dir, [RECIPE])
        dense, effective = (f / len(jets) / 1e6 for f in forward_flops(model, jets))
        values = row["values"]
        yield (row["key"], *describe(model, run), dense, effective, values["auc"],
               f"{values['auc']:.4f} | {values['rejection_at_0.5']:.0f}")


def gns_rows(study: Path, data: str, trajectories: int) -> Iterator[Row]:
    from datasets.trajectories import TrajectoryReader
    from sims.rollout import learned_rollout, summary
    from sims.train_gns import RECIPE

    with TrajectoryReader(data) as reader:
        trajs = [reader[i] for i in range(min(trajectories, len(reader)))]
    for run_dir in sorted(p.parent for p in study.glob("*/config.json")):
        model, run = load(run_dir, [RECIPE])
        history = model.cfg.history
        window = torch.from_numpy(trajs[0].position[:history].astype(np.float32)).transpose(0, 1)
        types = torch.from_numpy(trajs[0].particle_type)
        dense, effective = (f / len(types) / 1e3 for f in
                            forward_flops(model, window, types, torch.zeros(len(types), dtype=torch.long)))
        result = summary([learned_rollout(model, t.position, t.particle_type, history, precision="fp32")
                          for t in trajs])
        yield (run_dir.name, *describe(model, run), dense, effective, result["rollout_mse"],
               f"{result['rollout_mse']:.3g} ± {result['rollout_mse_std']:.2g} | {result['mse_at_20']:.3g}")


if __name__ == "__main__":
    main()
