"""``physml hep evaluate jets``: every trained tagger and the substructure baselines on the same test jets.

Metrics (as in the top-tagging papers): accuracy, ROC AUC, background rejection 1/eps_B at signal
efficiencies eps_S = 0.3 and 0.5. Baselines on the jet-level branches: a cut on the soft-drop mass window
(105-210 GeV) scanned in tau3/tau2, and a gradient-boosted classifier (scikit-learn) on mass, soft-drop mass,
tau2/tau1 and tau3/tau2, trained on the training split.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.atomic import refuse_overwriting_inputs
from datasets.root import DataConfig, read
from hep.classification import roc_auc
from hep.jets.inputs import VERTEX_CONFIG, load_jets
from hep.jets.models import MEDIA_MODELS
from hep.jets.tag import SHIPPED, class_probabilities
from hep.jets.train import RECIPE, SPLIT, jet_files, split
from training.figures import pyplot, save_figure
from training.inference import compile_network, inference_device
from training.pretrained import resolve
from training.recipe import load, read_run
from training.report import Column, Report

COLUMNS = [Column("accuracy", "accuracy"), Column("auc", "AUC", format=".4f"),
           Column("rejection_at_0.5", "1/eps_B at eps_S = 0.5", format=".1f"),
           Column("rejection_at_0.3", "1/eps_B at eps_S = 0.3", format=".1f")]
BASELINES = {"cut": "soft-drop mass window + tau3/tau2 cut", "gbdt": "gradient-boosted trees (m, m_SD, tau21, tau32)"}
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


def substructure(files: list[Path], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x [N, 4], labels [N])``: mass, soft-drop mass [GeV], tau2/tau1 and tau3/tau2 of every jet."""
    jets = read(files, DataConfig.from_dict(JET_BRANCHES))
    jets = jets[:limit] if limit is not None else jets
    x = np.column_stack([np.asarray(jets["jet_mass"]), np.asarray(jets["jet_sdmass"]),
                         np.asarray(jets["jet_tau2"]) / np.maximum(np.asarray(jets["jet_tau1"]), 1e-9),
                         np.asarray(jets["jet_tau3"]) / np.maximum(np.asarray(jets["jet_tau2"]), 1e-9)])
    return x, np.asarray(jets["label"])


def cut_score(x: np.ndarray) -> np.ndarray:
    """The cut baseline as a score: jets in the soft-drop mass window (105-210 GeV) first, then by lower
    tau3/tau2 (scanning the threshold scans the cut)."""
    window = (x[:, 1] > 105) & (x[:, 1] < 210)
    return window + 0.5 * (1 - np.clip(x[:, 3], 0, 1))


def baselines(files: list[Path], limit: int | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Test-split scores of the substructure baselines (keys of ``BASELINES``; same jets and split as the
    taggers'), and the labels."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = substructure(files, limit)
    a, b = int(SPLIT[0] * len(y)), int((SPLIT[0] + SPLIT[1]) * len(y))
    gbdt = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(x[:a], y[:a])
    return {"cut": cut_score(x[b:]), "gbdt": gbdt.predict_proba(x[b:])[:, 1]}, y[b:]


def evaluate(run_dirs: tuple[str, ...] = (), data: str | None = None, out: str = "runs/jets/eval",
             precision: str = "auto", compile: str = "auto", device: str = "auto",
             pretrained: tuple[str, ...] | None = None) -> Report:
    """Every trained tagger and the substructure baselines on the same test jets; table.md, metrics.json and
    roc.png go to ``out``.

    Args:
        run_dirs: ``train jets`` run folders.
        data: jet folder (default: the first run's).
        out: output folder.
        precision: the taggers' precision: auto (bf16 where fast), fp32 or bf16.
        compile: torch.compile the taggers: auto (on CUDA only), on or off.
        device: auto (CUDA when present), cpu, cuda or cuda:N.
        pretrained: shipped taggers to score too (``physml models list``).
    """
    run_dirs = [*run_dirs, *(str(resolve(None, name, SHIPPED)) for name in pretrained or ())]
    if not run_dirs:
        raise ValueError("give run folders of `train jets` or --pretrained NAME")
    if data is None and pretrained:
        raise ValueError("--pretrained needs --data: the folder of jet files to score")
    runs = [read_run(run_dir, [RECIPE])[1] for run_dir in run_dirs]
    data_dir = data or runs[0].data_dir
    files = jet_files(data_dir)
    config = VERTEX_CONFIG if any(run.model in MEDIA_MODELS for run in runs) else None  # the same jets for all
    refuse_overwriting_inputs(out, [data_dir])
    report = Report(f"Top tagging on the test jets of {data_dir}", COLUMNS, info={"data_dir": str(data_dir),
                                                                                  "out": str(out)})
    curves = {}
    test = labels = max_jets = None
    dev = inference_device(device)
    for run_dir in run_dirs:
        model, run = load(run_dir, [RECIPE], device=str(dev))
        compile_network(model, compile, dev)
        if test is None:
            max_jets = run.max_jets
            test = split(load_jets(files, config, limit=max_jets))["test"]
            labels = test.label.numpy()
        probs = class_probabilities(model, test, dev, precision)[:, 1]
        accuracy = float(np.mean((probs > 0.5) == labels))
        label = f"{run.model} ({Path(run_dir).name})"
        report.add(Path(run_dir).name, label, summarise(labels, probs, accuracy))
        curves[label] = probs
    scores, base_labels = baselines(files, max_jets)
    if not np.array_equal(base_labels, labels):
        raise ValueError(f"{data_dir}: the jet-level branches do not line up with the constituents")
    for key, s in scores.items():
        report.add(key, BASELINES[key], summarise(labels, s, float("nan")))
        curves[BASELINES[key]] = s
    report.info["test_jets"] = int(len(labels))
    roc_figure(Path(out) / "roc.png", labels, curves)
    report.write(out)
    return report


def roc_figure(path: Path, labels: np.ndarray, curves: dict[str, np.ndarray]) -> None:
    """Background rejection against signal efficiency of every ``{name: scores}``, log scale."""
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

