"""The dataset registry behind ``physml data list`` and ``physml data generate NAME``.

Domains declare their datasets with :func:`register` (a name, a generator function and the schema it
writes); the front door imports the domains, so this module never imports one.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: ``generate(out_dir, seed=..., **options) -> list of files written``."""

    name: str
    domain: str
    schema: str
    description: str
    generate: Callable[..., list[Path]]


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset; names are unique across domains."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] != spec:
        raise ValueError(f"dataset {spec.name!r} is already registered by domain {_REGISTRY[spec.name].domain!r}")
    _REGISTRY[spec.name] = spec
    return spec


def require_at_least(**limits: tuple[float, float]) -> None:
    """Refuse options (of a generator, a trainer, a model) below their minimum before any work is done.

    Args:
        limits: ``option=(value, minimum)``, e.g. ``frames=(frames, 3)``.
    """
    for name, (value, minimum) in limits.items():
        if not value >= minimum:  # NaN fails too
            raise ValueError(f"{name}: must be at least {minimum}, got {value}")


def get(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}") from None


def all_datasets() -> list[DatasetSpec]:
    return sorted(_REGISTRY.values(), key=lambda s: (s.domain, s.name))
