"""``physml demo``: every part of the suite that exists, end to end, with a summary table.

Everything goes to one folder (``runs/demo`` by default): datasets, run folders with checkpoints,
metrics and plots, ``summary.md`` / ``summary.json``, and the summary page ``summary.html`` with
``summary.png``: the pictures a physicist looks at first (ROC, event display, rollout strip, CSI against lead
time), one per row that names one.
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import textwrap
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from datasets.atomic import atomic_open
from gnn.neighbours import radius_graph
from physml.domains import apps
from training.figures import pyplot, save_figure
from training.report import DemoRow

COLUMNS = ("domain", "part", "metric", "value", "reference", "seconds")


def best_of(repeats: int, fn):
    """Shortest wall time of ``repeats`` calls, and the last result."""
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def neighbour_search_step(n: int = 100_000) -> list[DemoRow]:
    """The shared neighbour search against scipy's cKDTree on the same points: same edges, speed ratio."""
    rows = []
    rng = np.random.default_rng(0)
    radius_graph(rng.random((5000, 2)), 0.05)  # compile
    for dim, per_point in ((2, 20), (3, 30)):
        x = rng.random((n, dim))
        r = math.sqrt(per_point / (math.pi * n)) if dim == 2 else (3 * per_point / (4 * math.pi * n)) ** (1 / 3)
        ours, (s, rc) = best_of(3, lambda: radius_graph(x, r))
        ref, pairs = best_of(3, lambda: cKDTree(x).query_pairs(r, output_type="ndarray"))
        same = len(pairs) * 2 == len(s) and np.array_equal(
            np.sort(np.minimum(s, rc) * n + np.maximum(s, rc))[::2], np.sort(pairs.min(1) * n + pairs.max(1)))
        rows.append(DemoRow("gnn", f"radius graph, {dim}-D, N={n:,}",
                            "speed-up over cKDTree (x)" + ("" if same else " (EDGES DIFFER)"), ref / ours,
                            f"cKDTree {ref:.3f} s, ours {ours:.3f} s", fmt=".1f"))
    return rows


def run_demo(out: Path, seed: int = 0) -> list[dict]:
    """Every domain's demo step; returns the summary rows (a :class:`DemoRow`'s fields, ``value`` formatted,
    and the step's ``seconds``) and writes ``summary.md`` / ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    steps = [("gnn", lambda: neighbour_search_step())]
    steps += [(name, (lambda app=app: app.demo(out, seed=seed))) for name, app in apps().items()
              if app is not None and hasattr(app, "demo")]
    rows = []
    for name, step in steps:
        print(f"== demo: {name}", flush=True)
        t0 = time.perf_counter()
        step_rows = step()
        seconds = f"{time.perf_counter() - t0:.1f}"
        rows += [{**dataclasses.asdict(r), "value": format(r.value, r.fmt), "seconds": seconds} for r in step_rows]
    write_summary(out, rows)
    return rows


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the summary rows."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def write_summary(out: Path, rows: list[dict]) -> None:
    """``summary.json``, ``summary.md``, and the summary page: ``summary.png`` (the rows' figures in a grid)
    and ``summary.html`` (the table and the figures)."""
    with atomic_open(out / "summary.json") as fh:
        json.dump(rows, fh, indent=2)
    with atomic_open(out / "summary.md") as fh:
        fh.write("# physml demo\n\n" + format_table(rows) + "\n")
    figures = {r["figure"]: f"{r['domain']}: {r['part']}" for r in rows if r.get("figure")}
    missing = [f for f in figures if not Path(f).is_file()]
    figures = {f: title for f, title in figures.items() if f not in missing}
    summary_figure(out / "summary.png", figures)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in COLUMNS) + "</tr>"
                    for r in rows)
    images = "".join(f'<figure><img src="{html.escape(os.path.relpath(f, out))}" width="480">'
                     f"<figcaption>{html.escape(title)}</figcaption></figure>" for f, title in figures.items())
    with atomic_open(out / "summary.html") as fh:
        fh.write(f"<!doctype html><html><head><meta charset='utf-8'><title>physml demo</title></head><body>"
                 f"<h1>physml demo</h1><table border='1'><tr>{''.join(f'<th>{c}</th>' for c in COLUMNS)}</tr>"
                 f"{cells}</table>{images}"
                 f"{''.join(f'<p>missing figure: {html.escape(f)}</p>' for f in missing)}</body></html>\n")


def summary_figure(path: Path, figures: dict[str, str]) -> None:
    """The pictures ``{file: title}`` in a grid of two columns (a note when there are none)."""
    plt = pyplot()
    rows = max(1, math.ceil(len(figures) / 2))
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (file, title) in zip(axes.ravel(), figures.items()):
        ax.imshow(plt.imread(file))
        ax.set_title(textwrap.fill(title, 80), fontsize=8)
    if not figures:
        axes[0, 0].text(0.5, 0.5, "no figures", ha="center")
    fig.tight_layout()
    save_figure(fig, path)
