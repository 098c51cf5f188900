"""``physml generalist evaluate``: every task of every run on the same held-out examples, beside the task's
physics baselines, with the generalist's score as a percentage of the specialist's (Gato's "% of expert")."""
from __future__ import annotations

from pathlib import Path

from datasets.atomic import refuse_overwriting_inputs
from generalist.tasks import TASKS
from generalist.train import RECIPE, data_dir, predict
from training.recipe import load
from training.report import Column, Report

COLUMNS = [Column("auc", "AUC (jets)", "", ".4f"), Column("rmse_mm", "position RMSE (disks)", "mm", ".3f"),
           Column("rmse_mmh", "rain RMSE at +30 min (radar)", "mm/h", ".3f"),
           Column("of_specialist", "% of the specialist (Gato's normalisation)", "%", ".1f")]


def evaluate(run_dirs: tuple[str, ...], out: str = "runs/generalist/eval", examples: int = 512,
             seed: int = 1) -> Report:
    """Score generalist and specialist runs on each task's test split, beside the task's baselines.

    Args:
        run_dirs: ``generalist train`` run folders (a generalist and its specialists, say).
        out: where the report goes.
        examples: test examples per task.
        seed: which test examples (the radar crops and particle frames are sampled).
    """
    if not run_dirs:
        raise ValueError("give run folders of `generalist train`")
    refuse_overwriting_inputs(out, [Path(r) for r in run_dirs])
    loaded = [(Path(r).name, *load(r, [RECIPE])) for r in run_dirs]
    report = Report("Generalist and specialists on each task's test examples", COLUMNS, info={"out": out})
    for name, task in TASKS.items():
        runs = [(key, model, run) for key, model, run in loaded if name in run.tasks]
        if not runs:
            continue
        test = task.examples(data_dir(runs[0][2], name), "test", examples, seed)
        scores = {key: task.score(test, task.to_metric(test, predict(model, task, test))) for key, model, run in runs}
        baselines = {label: task.score(test, prediction) for label, prediction in test.baselines.items()}
        specialists = [key for key, _, run in runs if run.tasks == (name,)]
        for key, _, run in runs:
            values = dict(scores[key])
            if specialists and baselines:
                values["of_specialist"] = _of_specialist(task, values, scores[specialists[0]], baselines)
            kind = "specialist" if run.tasks == (name,) else f"generalist ({', '.join(run.tasks)})"
            report.add(f"{name}/{key}", f"{name}: {kind} ({key})", values)
        for label, values in baselines.items():
            report.add(f"{name}/{label}", f"{name}: {label}", values)
        report.info[f"{name}_examples"] = len(test.targets)
    report.write(out)
    return report


def _of_specialist(task, values: dict, specialist: dict, baselines: dict) -> float:
    """100 x (score - reference) / (specialist - reference), the reference being the task's weakest baseline
    (Gato normalises between a random agent and the expert; here the baselines are the floor a learned model
    must clear)."""
    metric = task.metric
    worst = (min if task.higher_is_better else max)(b[metric] for b in baselines.values())
    span = specialist[metric] - worst
    return 100.0 * (values[metric] - worst) / span if span else float("nan")
