"""What a domain's ``app`` module declares to the front door (``physml/domains.py`` collects them):

    DATASETS: list[DatasetSpec]     # physml data generate NAME
    RECIPES: list[Recipe]           # physml DOMAIN train NAME (alias: train-NAME)
    COMMANDS: list[Command]         # physml DOMAIN VERB [TASK] (evaluate, rollout, nowcast, ...)
    demo(out, seed) -> list[DemoRow]

The options of every command are generated from the code (run dataclasses, function signatures).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """``physml DOMAIN VERB``: one function, or one per task (``physml hep evaluate calo``; the alias
    ``evaluate-calo`` is generated).

    Args:
        verb: the command's name.
        summary: one line for ``--help``.
        run: the function, or ``{task: function}``. Its parameters become the options; it returns a
            :class:`training.report.Report` (printed) or the path it wrote.
    """

    verb: str
    summary: str
    run: Callable | dict[str, Callable]

    @property
    def tasks(self) -> dict[str, Callable]:
        return self.run if isinstance(self.run, dict) else {}


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
    """

    domain: str
    part: str
    metric: str
    value: float
    reference: str
    fmt: str = ".3g"
    output: str = ""
