"""Evaluation reports: rows of named metrics with units, one Markdown table, one ``metrics.json`` shape.

Every evaluator returns a :class:`Report` and writes it with :meth:`Report.write`: ``table.md`` (the table a
person reads) and ``metrics.json``::

    {"title": str,
     "columns": [{"key", "title", "unit", "format"}, ...],     # the table's metrics, in order
     "rows": [{"key", "label", "values": {metric: number}}, ...],
     "info": {...},                                            # provenance: data file, sample counts
     "extra": {...}}                                           # curves and other non-scalar results

``read_report(folder)`` reads it back. Rows have a stable ``key`` (``"gflash"``) besides their display
``label`` (``"GFlash (new seed)"``): code looks rows up by key, people read labels. A value that is missing
or not finite is written as ``null`` (in ``info`` and ``extra`` too, so the file is strict JSON) and shown
as ``n/a``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets.atomic import atomic_open


@dataclass(frozen=True)
class Column:
    """One metric of the table.

    Args:
        key: the metric's name in every row's ``values``.
        title: the column heading.
        unit: the metric's unit ("" if dimensionless); shown in the heading.
        format: a format spec for the table (``metrics.json`` keeps full precision).
        spread: the key of a spread of this metric (a standard deviation over test trajectories, say), shown
            as "mean ± spread" when the row has it.
    """

    key: str
    title: str
    unit: str = ""
    format: str = ".3g"
    spread: str | None = None

    @property
    def heading(self) -> str:
        return f"{self.title} [{self.unit}]" if self.unit else self.title


@dataclass
class Row:
    """One method's results: ``values`` maps metric keys to numbers (more than the table shows is fine)."""

    key: str
    label: str
    values: dict[str, float]

    def __getitem__(self, metric: str) -> float:
        return self.values[metric]


@dataclass
class Report:
    """See the module docstring."""

    title: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def add(self, key: str, label: str, values: dict[str, float]) -> Row:
        """Append a row; keys must be unique."""
        if any(r.key == key for r in self.rows):
            raise ValueError(f"report {self.title!r} already has a row {key!r}")
        row = Row(key, label, {k: float(v) for k, v in values.items()})
        self.rows.append(row)
        return row

    def __getitem__(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(f"report {self.title!r} has no row {key!r}; it has {', '.join(r.key for r in self.rows)}")

    def __contains__(self, key: str) -> bool:
        return any(r.key == key for r in self.rows)

    def to_markdown(self) -> str:
        """The table: one row per method, one column per :class:`Column`."""
        lines = ["| method | " + " | ".join(c.heading for c in self.columns) + " |",
                 "|---" * (len(self.columns) + 1) + "|"]
        for row in self.rows:
            cells = [_cell(row.values.get(c.key), c.format, row.values.get(c.spread) if c.spread else None)
                     for c in self.columns]
            lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"title": self.title,
                "columns": [{"key": c.key, "title": c.title, "unit": c.unit, "format": c.format, "spread": c.spread}
                            for c in self.columns],
                "rows": [{"key": r.key, "label": r.label, "values": {k: _finite(v) for k, v in r.values.items()}}
                         for r in self.rows],
                "info": _json_safe(self.info), "extra": _json_safe(self.extra)}

    def write(self, out_dir: str | os.PathLike) -> None:
        """``out_dir/table.md`` and ``out_dir/metrics.json``, each written atomically."""
        out = Path(out_dir)
        with atomic_open(out / "metrics.json") as fh:
            json.dump(self.to_json(), fh, indent=1, allow_nan=False)
        with atomic_open(out / "table.md") as fh:
            fh.write(f"# {self.title}\n\n{self.to_markdown()}\n")


@dataclass(frozen=True)
class DemoRow:
    """One line of the demo's summary: a learned part's score beside its reference.

    Args:
        domain: the domain it belongs to.
        part: what ran, with its budget.
        metric: what ``value`` measures, with its unit.
        value: the learned part's score.
        reference: the baseline's score, as text (``"Hough 0.912"``).
        fmt: how ``value`` is shown.
        output: the folder with the run's outputs, if any.
        figure: the picture a physicist would look at first (ROC, event display, rollout strip, CSI against
            lead time), shown on the demo's summary page.
    """

    domain: str
    part: str
    metric: str
    value: float
    reference: str
    fmt: str = ".3g"
    output: str = ""
    figure: str = ""


def read_report(out_dir: str | os.PathLike) -> Report:
    """The report an evaluator wrote to ``out_dir`` (its ``metrics.json``)."""
    path = Path(out_dir) / "metrics.json"
    try:
        data = json.loads(path.read_text())
        columns = [Column(**c) for c in data["columns"]]
        rows = [Row(r["key"], r["label"], {k: math.nan if v is None else float(v) for k, v in r["values"].items()})
                for r in data["rows"]]
        return Report(data["title"], columns, rows, data.get("info", {}), data.get("extra", {}))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; is {out_dir} an evaluation folder?") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a physml report ({type(err).__name__}: {err})") from None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json_safe(value: object) -> object:
    """``value`` with every non-finite float (at any depth of dicts and lists) replaced by None."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def mean_and_spread(samples: list[dict[str, float]], skip_nan: bool = True) -> dict[str, float]:
    """Each metric's mean over ``samples`` (one dict per test trajectory, say) and its sample standard
    deviation as ``{key}_std`` (0 for a single sample).

    Args:
        samples: dicts with the same keys (at least one).
        skip_nan: leave NaNs out (a horizon a sample does not reach); else a NaN makes the mean NaN.
    """
    out = {}
    for key in samples[0]:
        values = np.array([s[key] for s in samples], dtype=float)
        values = values[~np.isnan(values)] if skip_nan else values
        out[key] = float(values.mean()) if len(values) else math.nan
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0 if len(values) else math.nan
    return out


def _cell(value: float | None, spec: str, spread: float | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if spread is None or not math.isfinite(spread):
        return format(value, spec)
    return f"{format(value, spec)} ± {format(spread, spec)}"
