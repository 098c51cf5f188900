"""``physml hep evaluate-jets``: every trained tagger and the substructure baselines on the same test jets.

Metrics (as in the top-tagging papers): accuracy, ROC AUC, background rejection 1/eps_B at signal
efficiencies eps_S = 0.3 and 0.5. Baselines on the jet-level branches: a cut on the soft-drop mass window
(105-210 GeV) scanned in tau3/tau2, and a gradient-boosted classifier (scikit-learn) on mass, soft-drop mass,
tau2/tau1 and tau3/tau2, trained on the training split.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from datasets.atomic import atomic_open
from datasets.root import DataConfig, read
from hep.classification import roc_auc
from hep.jets.inputs import JetBatch, load_jets
from hep.jets.train import SPLIT, jet_files, load_tagger, split
from training.figures import pyplot, save_figure

JET_BRANCHES = {"treename": "jets", "branches": ["jet_mass", "jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3",
                                                 "label"]}


def rejection(labels: np.ndarray, scores: np.ndarray, efficiency: float) -> float:
    """1/eps_B at the threshold keeping ``efficiency`` of the signal."""
    threshold = np.quantile(scores[labels == 1], 1 - efficiency)
    eps_b = np.mean(scores[labels == 0] >= threshold)
    return float(1 / eps_b) if eps_b > 0 else float("inf")


def summarise(labels: np.ndarray, scores: np.ndarray, accuracy: float) -> dict[str, float]:
    return {"accuracy": accuracy, "auc": roc_auc(labels, scores), "rejection_at_0.5": rejection(labels, scores, 0.5),
            "rejection_at_0.3": rejection(labels, scores, 0.3)}


def baselines(files: list[Path], limit: int | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Test-split scores of the substructure baselines (same jets and split as the taggers'), and the labels."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    jets = read(files, DataConfig.from_dict(JET_BRANCHES))
    jets = jets[:limit] if limit is not None else jets
    x = np.column_stack([np.asarray(jets["jet_mass"]), np.asarray(jets["jet_sdmass"]),
                         np.asarray(jets["jet_tau2"]) / np.maximum(np.asarray(jets["jet_tau1"]), 1e-9),
                         np.asarray(jets["jet_tau3"]) / np.maximum(np.asarray(jets["jet_tau2"]), 1e-9)])
    y = np.asarray(jets["label"])
    a, b = int(SPLIT[0] * len(y)), int((SPLIT[0] + SPLIT[1]) * len(y))
    window = (x[b:, 1] > 105) & (x[b:, 1] < 210)
    cut = window + 0.5 * (1 - np.clip(x[b:, 3], 0, 1))  # jets in the mass window first, then by lower tau32
    gbdt = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(x[:a], y[:a])
    return {"soft-drop mass window + tau3/tau2 cut": cut,
            "gradient-boosted trees (m, m_SD, tau21, tau32)": gbdt.predict_proba(x[b:])[:, 1]}, y[b:]


def evaluate(run_dirs: list[str | Path], data_dir: str | Path, out: str | Path) -> dict[str, dict]:
    out = Path(out)
    files = jet_files(data_dir)
    table, curves = {}, {}
    test = labels = None
    for run_dir in run_dirs:
        model, config = load_tagger(run_dir)
        if test is None:
            jets = load_jets(files, limit=config.get("max_jets"))
            test = split(jets)["test"]
            labels = test.label.numpy()
        with torch.no_grad():
            probs = torch.cat([torch.softmax(model(test_chunk), 1)[:, 1] for test_chunk in _chunks(test)]).numpy()
        accuracy = float(np.mean((probs > 0.5) == labels))
        table[f"{config['model']} ({Path(run_dir).name})"] = summarise(labels, probs, accuracy)
        curves[config["model"]] = probs
    scores, base_labels = baselines(files, config.get("max_jets"))
    if not np.array_equal(base_labels, labels):
        raise ValueError(f"{data_dir}: the jet-level branches do not line up with the constituents")
    for name, s in scores.items():
        table[name] = summarise(labels, s, float("nan"))
        curves[name] = s
    _roc(out / "roc.png", labels, curves)
    with atomic_open(out / "metrics.json") as fh:
        json.dump({"data_dir": str(data_dir), "test_jets": int(len(labels)), "rows": table}, fh, indent=2)
    with atomic_open(out / "table.md") as fh:
        fh.write(format_table(table) + "\n")
    return table


def _chunks(jets: JetBatch, size: int = 256):
    for i in range(0, len(jets), size):
        yield jets[i:i + size].trimmed()


def _roc(path: Path, labels: np.ndarray, curves: dict[str, np.ndarray]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, scores in curves.items():
        order = np.argsort(-scores)
        sig = np.cumsum(labels[order] == 1) / max((labels == 1).sum(), 1)
        bkg = np.cumsum(labels[order] == 0) / max((labels == 0).sum(), 1)
        ok = bkg > 0
        ax.plot(sig[ok], 1 / bkg[ok], label=name)
    ax.set(yscale="log", xlabel="signal efficiency eps_S", ylabel="background rejection 1/eps_B", xlim=(0, 1))
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def format_table(table: dict[str, dict]) -> str:
    lines = ["| tagger | accuracy | AUC | 1/eps_B at eps_S = 0.5 | 1/eps_B at eps_S = 0.3 |", "|---|---|---|---|---|"]
    for name, r in table.items():
        acc = "" if np.isnan(r["accuracy"]) else f"{r['accuracy']:.3f}"
        lines.append(f"| {name} | {acc} | {r['auc']:.4f} | {r['rejection_at_0.5']:.1f} | {r['rejection_at_0.3']:.1f} |")
    return "\n".join(lines)
