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


@dataclass(frozen=True)
class ImportSpec:
    """A dataset format of the field: ``run(src, out_dir, **options) -> list of files written`` converts files in
    that format into one of the suite's schemas (``physml data import NAME SRC``)."""

    name: str
    domain: str
    schema: str
    description: str
    run: Callable[..., list[Path]]


_REGISTRY: dict[str, DatasetSpec] = {}
_IMPORTS: dict[str, ImportSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset; names are unique across domains."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] != spec:
        raise ValueError(f"dataset {spec.name!r} is already registered by domain {_REGISTRY[spec.name].domain!r}")
    _REGISTRY[spec.name] = spec
    return spec


def register_import(spec: ImportSpec) -> ImportSpec:
    """Add an importer; names are unique across domains."""
    if spec.name in _IMPORTS and _IMPORTS[spec.name] != spec:
        raise ValueError(f"importer {spec.name!r} is already registered by domain {_IMPORTS[spec.name].domain!r}")
    _IMPORTS[spec.name] = spec
    return spec


def all_imports() -> list[ImportSpec]:
    return sorted(_IMPORTS.values(), key=lambda s: (s.domain, s.name))


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
