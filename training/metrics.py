"""Metric logs of a run: ``metrics.jsonl`` (appended live), ``metrics.csv`` and ``loss.png``."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from datasets.atomic import atomic_open
from training.figures import pyplot, save_figure


class MetricLog:
    """Rows of ``{"step": int, "split": "train"|"eval", name: value}`` for one run folder."""

    def __init__(self, run_dir: str | os.PathLike, resume_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.jsonl = self.run_dir / "metrics.jsonl"
        self.rows: list[dict] = []
        if resume_step is not None and self.jsonl.exists():
            rows = [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.strip()]
            self.rows = [r for r in rows if r["step"] <= resume_step]
        with atomic_open(self.jsonl) as fh:  # drop rows logged after the checkpoint we resume from
            fh.writelines(json.dumps(r) + "\n" for r in self.rows)

    def log(self, row: dict) -> None:
        self.rows.append(row)
        with open(self.jsonl, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def flush(self) -> None:
        """Rewrite ``metrics.csv`` and ``loss.png`` from the rows so far."""
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        with atomic_open(self.run_dir / "metrics.csv", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        self.plot()

    def series(self, split: str, name: str) -> tuple[list[int], list[float]]:
        rows = [r for r in self.rows if r.get("split") == split and name in r]
        return [r["step"] for r in rows], [r[name] for r in rows]

    def plot(self) -> None:
        fig, ax = pyplot().subplots(figsize=(6, 4))
        for split in ("train", "eval"):
            steps, values = self.series(split, "loss")
            if steps:
                ax.plot(steps, values, label=split, marker="o" if split == "eval" else None)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        _, train = self.series("train", "loss")
        if train and min(train) > 0:
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        save_figure(fig, self.run_dir / "loss.png")
