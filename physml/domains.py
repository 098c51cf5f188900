"""Collects what each domain declares in its ``app`` module:

    DATASETS: list[DatasetSpec]     # physml data generate NAME                  (datasets.registry)
    IMPORTS: list[ImportSpec]       # physml data import NAME SRC (the field's formats) (datasets.registry)
    RECIPES: list[Recipe]           # physml DOMAIN train NAME (alias train-NAME)  (training.recipe)
    COMMANDS: list[Command]         # physml DOMAIN VERB [TASK]: evaluate, rollout, nowcast (training.recipe)
    SCALING: dict[str, ScalingTask] # physml scaling sweep TASK                    (training.scaling)
    PRETRAINED: dict[str, Card]     # shipped models: --pretrained NAME, physml models list (training.pretrained)
    demo(out, seed) -> list[DemoRow]                                              (training.report)

The options of every command are generated from the code (run dataclasses, function signatures).
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from datasets import registry

DOMAINS = ("sims", "hep", "weather", "clrs", "generalist")


def apps() -> dict[str, ModuleType | None]:
    """Each domain's ``app`` module, or None for a domain that declares nothing yet."""
    found = {}
    for name in DOMAINS:
        spec = importlib.util.find_spec(f"{name}.app")
        found[name] = importlib.import_module(f"{name}.app") if spec else None
    return found


def register_datasets() -> None:
    for app in apps().values():
        for spec in getattr(app, "DATASETS", []):
            registry.register(spec)
        for spec in getattr(app, "IMPORTS", []):
            registry.register_import(spec)


def recipes() -> list:
    """Every domain's recipes (trainable models)."""
    return [recipe for app in apps().values() for recipe in getattr(app, "RECIPES", [])]


def pretrained() -> dict[str, dict]:
    """Every domain's shipped models: ``{domain: {name: Card}}``."""
    return {domain: dict(getattr(app, "PRETRAINED", {})) for domain, app in apps().items()}


def describe(name: str) -> str:
    """The one-line docstring of a domain package."""
    doc = importlib.import_module(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
