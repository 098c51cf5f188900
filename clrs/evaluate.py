"""Scores as the benchmark computes them, and ``physml clrs evaluate``: out-of-distribution scores of trained
runs on larger instances beside the published triplet-GMPNN numbers.

Per output feature (CLRS ``evaluation.py``): a pointer's or a categorical's accuracy over all nodes of all
executions, a ``mask_one``'s accuracy over executions, a mask's F1 over all nodes. An algorithm's score is the
mean over its outputs; the papers call it (micro-)F1.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clrs.model import ClrsNet
from clrs.train import RECIPE, algorithms
from datasets.atomic import refuse_overwriting_inputs
from datasets.clrs import SPECS, ClrsData, Stage, Type, collate
from training.recipe import load
from training.report import Column, Report

# Ibarz et al. 2022, "A Generalist Neural Algorithmic Learner", single-task triplet-GMPNN, OOD (n = 64)
# micro-F1 in %, mean and standard deviation over 10 seeds.
PUBLISHED = {"bfs": (99.73, 0.04), "dfs": (47.79, 4.19), "topological_sort": (87.27, 2.67),
             "bellman_ford": (97.39, 0.19), "dijkstra": (96.05, 0.60), "mst_prim": (86.39, 1.33),
             "insertion_sort": (78.14, 4.64), "binary_search": (77.58, 2.35)}


@torch.no_grad()
def scores(model: ClrsNet, data: ClrsData, batch_size: int | None = None) -> dict[str, float]:
    """Each output's score and their mean (``score``) on ``data``, in eval mode.

    Args:
        model: a trained network that knows ``data.algorithm``.
        data: executions to score.
        batch_size: executions per forward pass (None: at most 32, fewer on large instances so that the
            triplet tensor ``[B, N, N, N, 8]`` stays near 2**23 numbers).
    """
    if batch_size is None:
        n = max(len(e["pos"]) for _, e in (data[i] for i in range(len(data))))
        batch_size = max(1, min(32, 2**23 // n**3))
    was_training = model.training
    model.eval()
    spec = SPECS[data.algorithm]
    device = next(model.parameters()).device
    hits: dict[str, list[np.ndarray]] = {k: [] for k, f in spec.items() if f.stage is Stage.OUTPUT}
    truths: dict[str, list[np.ndarray]] = {k: [] for k in hits}
    for start in range(0, len(data), batch_size):
        batch = collate([data[i] for i in range(start, min(start + batch_size, len(data)))]).to(device)
        outputs, _ = model(batch, keep_hints=False)
        mask = batch.node_mask.cpu().numpy()
        for name in hits:
            f, pred, true = spec[name], outputs[name].cpu(), batch.outputs[name].cpu()
            if f.type is Type.MASK:
                hits[name].append((pred > 0).numpy()[mask])
                truths[name].append(true.numpy()[mask] > 0.5)
            elif f.type is Type.MASK_ONE:
                hits[name].append((pred.argmax(-1) == true).numpy())
            else:
                hits[name].append((pred.argmax(-1) == true).numpy()[mask])
    model.train(was_training)
    result = {}
    for name, parts in hits.items():
        found = np.concatenate(parts)
        result[name] = _f1(found, np.concatenate(truths[name])) if truths[name] else float(found.mean())
    result["score"] = float(np.mean([result[k] for k in hits]))
    return result


def _f1(predicted: np.ndarray, true: np.ndarray) -> float:
    tp = float((predicted & true).sum())
    precision = tp / max(predicted.sum(), 1)
    recall = tp / max(true.sum(), 1)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def evaluate(run_dirs: tuple[str, ...], out: str = "runs/clrs/eval", sizes: tuple[int, ...] = (16, 64, 128),
             examples: int = 64, seed: int = 3, device: str = "cpu") -> Report:
    """Score runs on fresh executions of each size (the test distribution: ``p = 0.5``, positions ``k / n``);
    runs that learned the same algorithms (seeds of one recipe) are averaged, with their spread.

    Args:
        run_dirs: ``clrs train`` run folders.
        out: where the report goes.
        sizes: instance sizes to test (the benchmark: 64; training used at most 16).
        examples: executions per algorithm and size.
        seed: seeds the test executions (the same for every run).
        device: where the networks run (cpu, cuda).
    """
    if not run_dirs:
        raise ValueError("give run folders of `clrs train`")
    refuse_overwriting_inputs(out, [Path(r) for r in run_dirs])
    loaded = [(r, *load(r, [RECIPE])) for r in run_dirs]
    columns = [Column(f"f1_{n}", f"score at n={n} (± std over runs)", "%", ".2f", spread=f"std_{n}") for n in sizes]
    columns += [Column("runs", "runs", "", ".0f"),
                Column("published_64", "published at n=64 (Ibarz et al.)", "%", ".2f", spread="published_std")]
    report = Report("CLRS: learned executors out of distribution", columns, info={"out": out, "examples": examples})
    groups: dict[tuple[str, ...], list] = {}
    for run_dir, model, run in loaded:
        groups.setdefault(algorithms(run), []).append(model.to(device))
    for names, models in groups.items():
        kind = "single-task" if len(names) == 1 else f"multi-task ({len(names)} algorithms)"
        for a in names:
            values: dict[str, float] = {"runs": len(models), "published_64": PUBLISHED[a][0],
                                        "published_std": PUBLISHED[a][1]}
            for n in sizes:
                data = ClrsData(a, (n,), examples, seed + n)
                s = [100 * scores(m, data)["score"] for m in models]
                values[f"f1_{n}"], values[f"std_{n}"] = float(np.mean(s)), float(np.std(s))
            report.add(f"{a}/{'single' if len(names) == 1 else 'multi'}", f"{a} ({kind})", values)
    report.write(out)
    return report
