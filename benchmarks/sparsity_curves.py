"""Accuracy against sparsity of the taggers of a sparse-training study (docs/sparsity.md).

Reads ``STUDY/eval/metrics.json`` (``physml hep evaluate-jets STUDY/* --out STUDY/eval``) and every run folder
named there; prints one markdown row per run with its non-zero weights, forward MFLOP per jet (dense, and with
zero weights skipped: ``training.sparsity.forward_flops`` on 512 sample jets), AUC and 1/eps_B; draws
``STUDY/auc_vs_flops.png`` (AUC against effective MFLOP per jet, one line per method and one for the dense
networks of other widths).

Usage: python benchmarks/sparsity_curves.py runs/sparsity
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from torch import nn

from hep.jets import SAMPLE_DIR
from hep.jets.inputs import load_jets
from hep.jets.train import RECIPE, jet_files
from training.figures import pyplot, save_figure
from training.recipe import load
from training.sparsity import forward_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path)
    args = parser.parse_args()
    rows = json.loads((args.study / "eval" / "metrics.json").read_text())["rows"]
    jets = load_jets(jet_files(SAMPLE_DIR), limit=512)
    curves: dict[str, list[tuple[float, float]]] = {}
    print("| run | method | sparsity | non-zero weights | MFLOP/jet dense | effective | AUC | 1/eps_B at 0.5 |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        run_dir = args.study / row["key"]
        if not (run_dir / "config.json").exists():
            continue  # a baseline row
        model, run = load(run_dir, [RECIPE])
        sparse = run.trainer.sparse
        method = sparse.sparse_method if sparse.sparsity else "dense (width)"
        weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
        nonzero = sum(int((w != 0).sum()) for w in weights)
        dense, effective = (f / len(jets) / 1e6 for f in forward_flops(model, jets))
        values = row["values"]
        print(f"| {row['key']} | {method} | {sparse.sparsity:g} | {nonzero} | {dense:.2f} | {effective:.2f} | "
              f"{values['auc']:.4f} | {values['rejection_at_0.5']:.0f} |")
        curves.setdefault(method, []).append((effective, values["auc"]))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method, points in curves.items():
        points.sort()
        ax.plot(*zip(*points), "o-" if method != "dense (width)" else "s--", label=method)
    ax.set(xscale="log", xlabel="forward MFLOP per jet (zero weights skipped)", ylabel="AUC (test jets)")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, args.study / "auc_vs_flops.png")


if __name__ == "__main__":
    main()
