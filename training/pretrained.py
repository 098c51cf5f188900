"""Pretrained reference models shipped with the suite as package data.

Each is a run folder as :func:`training.recipe.train` writes it, cut to what inference needs
(``config.json`` and ``checkpoints/best.pt`` with its checksum: the model weights alone), plus a
``card.json``, the model card (docs/models.md)::

    {"name": "particlenet-lite", "summary": "...", "data": "...", "command": "...", "training_minutes": 5.8,
     "metrics": {"auc": 0.99}, "check": {"metric": "auc", "tolerance": 0.002, "on": "..."}}

A domain keeps its models in ``<domain>/pretrained/<name>/`` and lists them with :func:`cards`; every command
that takes ``--pretrained NAME`` resolves the name with :func:`resolve`. :func:`export` writes such a folder
from a finished run.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from training.checkpoint import inference_weights, load_checkpoint, model_checkpoint, save_best

CARD = "card.json"


@dataclass(frozen=True)
class Card:
    """A shipped model: where it lies and what its card says.

    Args:
        name: what ``--pretrained`` takes.
        folder: the run folder (``config.json``, ``checkpoints/best.pt``).
        summary: one line for ``physml models list``.
        data: the data it was trained on, and how to make them.
        command: the command that trained it.
        training_minutes: wall-clock training time on the machine named in the card's data.
        metrics: its headline metrics, as measured by ``check['command']``.
        check: how the tests reproduce the headline metric: ``metric``, ``tolerance``, ``on`` (the data).
    """

    name: str
    folder: Path
    summary: str
    data: str
    command: str
    training_minutes: float
    metrics: dict[str, float] = field(default_factory=dict)
    check: dict = field(default_factory=dict)

    def provenance(self) -> str:
        """How a demo row labels the model: pretrained, its training time, where its card is."""
        return f"pretrained, {self.training_minutes:.0f} min of training: physml models list, docs/models.md"


def cards(root: str | os.PathLike) -> dict[str, Card]:
    """Every model card under ``root`` (``root/<name>/card.json``), by name."""
    found = {}
    for path in sorted(Path(root).glob(f"*/{CARD}")):
        try:
            raw = json.loads(path.read_text())
            card = Card(folder=path.parent, **raw)
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: not a model card ({err})") from None
        found[card.name] = card
    return found


def resolve(run_dir: str | None, pretrained: str | None, shipped: dict[str, Card]) -> Path:
    """The run folder a command loads: ``run_dir`` (a folder written by training) or the shipped model named
    ``pretrained``; exactly one of them.

    Args:
        run_dir: a run folder, or None.
        pretrained: a shipped model's name, or None.
        shipped: the names the caller accepts (a tagging command accepts taggers only).
    """
    if (run_dir is None) == (pretrained is None):
        raise ValueError("give either a run folder (--model) or a shipped model (--pretrained NAME; "
                         f"available: {', '.join(shipped) or 'none'})")
    if pretrained is None:
        return Path(run_dir)
    if pretrained not in shipped:
        raise ValueError(f"--pretrained {pretrained!r}: no such shipped model; available: "
                         f"{', '.join(shipped) or 'none'} (physml models list)")
    return shipped[pretrained].folder


def evaluation_target(pretrained: str, shipped: dict[str, Card], data: str | None,
                      out: str | None) -> tuple[str, str]:
    """For an evaluator given ``--pretrained NAME``: the shipped run folder, and the output folder
    (``runs/NAME/eval`` unless given: never inside the package). ``data`` is required: a shipped run's own data
    folder is not on the user's machine.

    Args:
        pretrained: the shipped model's name.
        shipped: the names the evaluator accepts.
        data: the data to score (required).
        out: the output folder, or None.
    """
    if data is None:
        raise ValueError(f"--pretrained {pretrained} needs --data: the files to score it on")
    return str(resolve(None, pretrained, shipped)), out or f"runs/{pretrained}/eval"


def export(run_dir: str | os.PathLike, out: str | os.PathLike, card: dict) -> Path:
    """Write the shippable folder of a finished run: its ``config.json``, its selected weights alone (no
    optimizer, no RNG state) as ``checkpoints/best.pt`` with a checksum, and ``card.json``.

    Args:
        run_dir: a run folder written by training.
        out: the new folder (must not exist).
        card: the card's fields other than ``folder`` (see :class:`Card`).
    """
    source, out = Path(run_dir), Path(out)
    if out.exists():
        raise ValueError(f"{out}: exists; remove it first")
    checkpoint = model_checkpoint(source)
    if checkpoint is None:
        raise FileNotFoundError(f"{source}/checkpoints: no checkpoint to export")
    Card(folder=out, **card)  # the card's fields are checked before anything is written
    weights = inference_weights(load_checkpoint(checkpoint))
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:  # the folder appears complete or not at all
        save_best(tmp, {"model": {k: v.clone() for k, v in weights.items()}})
        shutil.copyfile(source / "config.json", tmp / "config.json")
        (tmp / CARD).write_text(json.dumps(card, indent=1) + "\n")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
