"""``physml hep inspect-tagger``: what a trained transformer tagger attends to, and which heads it needs.

On the test jets of its data (backbones.interpret.attention_probe):
- head ablation: the AUC with each attention head's output zeroed in turn, against the intact model
  (``table.md``, ``metrics.json``);
- ``class_attention.png``: the particles of the most top-like top jet and the most QCD-like QCD jet in the
  (d_eta, d_phi) plane, marker area proportional to pT, colour the class token's attention in the last
  class-attention block (mean over heads);
- ``pair_mass.png``: particle-to-particle attention in the last particle block against the invariant mass of
  the pair, relative to uniform attention (1 = the query attends to every particle alike), top and QCD jets:
  a tagger that looks for the W decay attends more to pairs near m_W = 80.4 GeV in top jets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from backbones.attention import CrossAttention
from backbones.interpret import attention_probe
from datasets.atomic import atomic_folder
from hep.classification import roc_auc
from hep.jets.inputs import JetBatch, load_jets, pair_features
from hep.jets.tag import class_probabilities
from hep.jets.train import RECIPE, jet_files, split
from training.figures import pyplot, save_figure
from training.inference import inference_device
from training.recipe import load
from training.report import Column, Report

W_MASS = 80.4  # GeV
COLUMNS = [Column("auc", "AUC", format=".4f"), Column("delta_auc", "AUC change", format="+.4f")]


def inspect_tagger(run_dir: str, *, data: str | None = None, out: str = "runs/jets/inspect", jets: int = 2000,
                   device: str = "cpu") -> Report:
    """Head ablation and attention pictures of a transformer tagger (ParT, Perceiver); see the module docstring.

    Args:
        run_dir: a ``train jets`` run folder of a model with attention layers.
        data: jet folder (default: the run's); its test split is used.
        out: output folder (table.md, metrics.json, class_attention.png, pair_mass.png; replaced atomically).
        jets: test jets to use (the first ones).
        device: auto (CUDA when present), cpu, cuda or cuda:N.
    """
    dev = inference_device(device)
    model, run = load(run_dir, [RECIPE], device=str(dev))
    heads = {name: m.heads for name, m in model.named_modules() if isinstance(m, CrossAttention)}
    if not heads:
        raise ValueError(f"{run_dir}: a {run.model} tagger has no attention layers to inspect (ParT, Perceiver do)")
    data_dir = data or run.data_dir
    test = split(load_jets(jet_files(data_dir), limit=run.max_jets))["test"][:jets]
    labels = test.label.numpy()
    intact = roc_auc(labels, class_probabilities(model, test, dev)[:, 1])
    report = Report(f"Head ablation of {run.model} ({Path(run_dir).name}) on {len(labels)} test jets of {data_dir}",
                    COLUMNS, info={"run_dir": str(run_dir), "data_dir": str(data_dir), "jets": len(labels),
                                          "out": str(out)})
    report.add("intact", "intact model", {"auc": intact, "delta_auc": 0.0})
    for name, count in heads.items():
        for head in range(count):
            with attention_probe(model, ablate={name: [head]}):
                auc = roc_auc(labels, class_probabilities(model, test, dev)[:, 1])
            report.add(f"{name}.{head}", f"{name} head {head} zeroed", {"auc": auc, "delta_auc": auc - intact})
    sample = test[:512].trimmed()
    with torch.no_grad(), attention_probe(model) as maps:
        scores = model(sample.to(dev)).softmax(-1)[:, 1].cpu().numpy()
    maps = {k: v.float().cpu() for k, v in maps.items()}
    with atomic_folder(out) as tmp:
        report.write(tmp)
        _class_attention_figure(tmp / "class_attention.png", sample, scores, maps)
        _pair_mass_figure(tmp / "pair_mass.png", sample, maps)
    return report


def _last(maps: dict[str, torch.Tensor], prefix: str) -> torch.Tensor | None:
    names = [k for k in maps if k.startswith(prefix + ".")]
    names.sort(key=lambda k: int(k[len(prefix) + 1:].split(".")[0]))
    return maps[names[-1]] if names else None


def _class_attention_figure(path: Path, jets: JetBatch, scores: np.ndarray, maps: dict[str, torch.Tensor]) -> None:
    attention = _last(maps, "encoder.class_blocks")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    if attention is None:  # no class token (a Perceiver): nothing to draw per particle
        fig.text(0.5, 0.5, "this tagger has no class-attention blocks", ha="center")
        save_figure(fig, path)
        return
    per_particle = attention.mean(1)[:, 0, 1:]  # [B, L]: the class token's attention to each particle
    label = jets.label.numpy()
    px, py = jets.vectors[:, 0], jets.vectors[:, 1]
    pt = torch.hypot(px, py)
    for ax, (cls, name) in zip(axes, ((1, "top"), (0, "QCD"))):
        candidates = np.where(label == cls)[0]
        i = candidates[np.argmax(scores[candidates])] if cls == 1 else candidates[np.argmin(scores[candidates])]
        real = jets.mask[i]
        points = jets.points[i][:, real].numpy()
        weight = per_particle[i][: real.shape[0]][real].numpy()
        area = 400 * (pt[i][real] / pt[i][real].max()).numpy()
        s = ax.scatter(points[0], points[1], s=area, c=weight, cmap="viridis", edgecolors="k", linewidths=0.3)
        fig.colorbar(s, ax=ax, label="class-token attention")
        ax.set(title=f"{name} jet (score {scores[i]:.3f})", xlabel="d_eta", ylabel="d_phi")
    fig.tight_layout()
    save_figure(fig, path)


def _pair_mass_figure(path: Path, jets: JetBatch, maps: dict[str, torch.Tensor]) -> None:
    attention = _last(maps, "encoder.blocks")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    if attention is not None:
        mass = (pair_features(jets.vectors, jets.mask)[:, 3] / 2).exp()  # ln m^2 -> m [GeV]
        n = jets.mask.sum(1).float()[:, None, None]
        relative = attention.mean(1) * n  # 1: uniform attention
        pairs = jets.mask[:, :, None] & jets.mask[:, None, :] & ~torch.eye(mass.shape[-1], dtype=torch.bool)
        edges = np.linspace(0, 150, 31)
        centres = 0.5 * (edges[1:] + edges[:-1])
        for cls, name in ((1, "top"), (0, "QCD")):
            chosen = pairs & (jets.label == cls)[:, None, None]
            m, w = mass[chosen].numpy(), relative[chosen].numpy()
            which = np.digitize(m, edges) - 1
            mean = [w[which == b].mean() if (which == b).sum() >= 30 else np.nan for b in range(len(centres))]
            ax.plot(centres, mean, "o-", label=f"{name} jets")
        ax.axvline(W_MASS, color="grey", ls=":", label="m_W")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.legend()
    ax.set(xlabel="pair invariant mass m_ij [GeV]", ylabel="attention / uniform (last particle block)")
    fig.tight_layout()
    save_figure(fig, path)
