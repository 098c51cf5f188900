"""ROOT TTrees in and out through uproot and awkward, driven by a weaver-style YAML data configuration.

A data configuration (:class:`DataConfig`, docs/schemas.md) says which tree to read, which feature is which
branch, which variables to derive (expressions over features in the safe language of
:mod:`datasets.expressions`: arithmetic, comparisons and listed ``np.``/``ak.`` functions, never Python's
``eval``), which entries to keep (``selection``), and which jagged variables to pad into fixed-length arrays::

    treename: jets
    branches: {part_px: part_px, part_py: part_py, jet_pt: jet_pt}
    new_variables: {part_pt: np.hypot(part_px, part_py)}
    selection: jet_pt > 500
    inputs:
      particles: {length: 128, pad_value: 0, vars: [part_pt]}

:func:`iterate` reads any file with a tree of that name and those branches in chunks (files larger than
memory), :func:`lazy` builds the same records as a dask-awkward array, :func:`padded` turns jagged records
into ``[N, C, L]`` arrays and masks, and :class:`RootWriter` writes trees (jagged branches included),
LZ4-compressed and atomically. Errors name the file and what was expected.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
import yaml
from tqdm.auto import tqdm

from datasets.atomic import atomic_path
from datasets.expressions import Expression


@dataclass(frozen=True)
class PaddedInput:
    """Jagged variables padded (or truncated) to ``length`` per entry, stacked as channels."""

    vars: tuple[str, ...]
    length: int
    pad_value: float = 0.0


@dataclass(frozen=True)
class DataConfig:
    treename: str
    branches: dict[str, str]
    new_variables: dict[str, str] = field(default_factory=dict)
    selection: str | None = None
    inputs: dict[str, PaddedInput] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict, where: str = "data config") -> "DataConfig":
        if not isinstance(raw, dict) or "treename" not in raw or "branches" not in raw:
            raise ValueError(f"{where}: a data config needs 'treename' and 'branches'")
        branches = raw["branches"]
        if isinstance(branches, list):  # features named like their branches
            branches = {name: name for name in branches if isinstance(name, str)} if all(
                isinstance(name, str) for name in branches) else None
        if not isinstance(branches, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in branches.items()):
            raise ValueError(f"{where}: 'branches' must map feature names to branch names (or list branch names)")
        for key, kind in (("treename", str), ("new_variables", dict), ("selection", str), ("inputs", dict)):
            if raw.get(key) is not None and not isinstance(raw[key], kind):
                raise ValueError(f"{where}: {key!r} must be a {'string' if kind is str else 'mapping'}, got "
                                 f"{type(raw[key]).__name__}")
        inputs = {}
        for name, spec in (raw.get("inputs") or {}).items():
            try:
                inputs[name] = PaddedInput(tuple(spec["vars"]), int(spec["length"]), float(spec.get("pad_value", 0)))
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise ValueError(f"{where}: input {name!r} needs 'vars' (a list), 'length' (an integer) and "
                                 f"optionally 'pad_value' ({type(err).__name__}: {err})") from None
        config = cls(raw["treename"], dict(branches), dict(raw.get("new_variables") or {}), raw.get("selection"),
                     inputs)
        known = set(config.branches) | set(config.new_variables)
        unknown = [v for spec in inputs.values() for v in spec.vars if v not in known]
        if unknown:
            raise ValueError(f"{where}: inputs use undefined variables {', '.join(unknown)}")
        config.expressions(where)  # every expression is checked when the config is read
        return config

    def expressions(self, where: str) -> tuple[dict[str, Expression], Expression | None]:
        """The checked ``new_variables`` (each may use the branches and the variables before it) and
        ``selection``; errors name ``where`` and the key."""
        names, derived = set(self.branches), {}
        for name, text in self.new_variables.items():
            derived[name] = Expression(text, names, f"{where}: new_variables.{name}")
            names.add(name)
        selection = Expression(self.selection, names, f"{where}: selection") if self.selection else None
        return derived, selection

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "DataConfig":
        try:
            with open(path) as fh:
                raw = yaml.safe_load(fh)
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        return cls.from_dict(raw, str(path))


def _numeric(interpretation: object) -> bool:
    inner = getattr(interpretation, "content", interpretation)
    return isinstance(inner, uproot.interpretation.numerical.AsDtype)


def open_tree(path: str | os.PathLike, config: DataConfig):
    """The configured tree of ``path``, after checking that every configured branch exists and is numeric
    (and jagged where a padded input needs it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ROOT file")
    try:
        file = uproot.open(path)
    except Exception as err:
        raise ValueError(f"{path}: not a readable ROOT file, it may be truncated or corrupted "
                         f"({type(err).__name__}: {err})") from None
    try:
        tree = file[config.treename]
    except Exception:
        trees = sorted({k.split(";")[0] for k, c in file.classnames().items() if c == "TTree"})
        raise ValueError(f"{path}: no TTree {config.treename!r}; trees in the file: {', '.join(trees) or 'none'}") \
            from None
    missing = [b for b in config.branches.values() if b not in tree]
    if missing:
        raise ValueError(f"{path}: tree {config.treename!r} lacks branch(es) {', '.join(missing)}")
    jagged = {config.branches[v] for spec in config.inputs.values() for v in spec.vars if v in config.branches}
    for branch in config.branches.values():
        interpretation = tree[branch].interpretation
        if not _numeric(interpretation):
            raise ValueError(f"{path}: branch {branch!r} has type {tree[branch].typename}, expected numbers")
        if branch in jagged and not isinstance(interpretation, uproot.interpretation.jagged.AsJagged):
            raise ValueError(f"{path}: branch {branch!r} has type {tree[branch].typename}, expected a jagged "
                             "array (one value per particle or hit) for a padded input")
    return tree


def records(arrays: ak.Array, config: DataConfig, where: str) -> ak.Array:
    """Rename branches to features, add the derived variables and apply the selection."""
    fields = {name: arrays[branch] for name, branch in config.branches.items()}
    derived, selection = config.expressions(where)
    for name, expression in derived.items():
        fields[name] = expression.evaluate(fields)
    out = ak.zip(fields, depth_limit=1)
    return out[selection.evaluate(fields)] if selection is not None else out


def iterate(files: str | os.PathLike | Iterable, config: DataConfig, step_size: str | int = "100 MB",
            progress: bool = True) -> Iterator[ak.Array]:
    """Chunks of records from each file in turn (``step_size``: entries, or bytes as ``"100 MB"``)."""
    paths = [Path(files)] if isinstance(files, (str, os.PathLike)) else [Path(f) for f in files]
    trees = [(p, open_tree(p, config)) for p in paths]
    branches = sorted(set(config.branches.values()))
    with tqdm(total=sum(t.num_entries for _, t in trees), desc="read ROOT", unit="entry",
              disable=not progress) as bar:
        for path, tree in trees:
            try:
                for chunk in tree.iterate(branches, step_size=step_size, library="ak"):
                    bar.update(len(chunk))
                    yield records(chunk, config, str(path))
            except Exception as err:
                if isinstance(err, ValueError) and str(err).startswith(str(path)):
                    raise  # already names the file (a bad expression)
                raise ValueError(f"{path}: cannot read tree {config.treename!r}, the file may be truncated or "
                                 f"corrupted ({type(err).__name__}: {err})") from None


def read(files: str | os.PathLike | Iterable, config: DataConfig, progress: bool = False) -> ak.Array:
    """All records of ``files`` in memory."""
    chunks = list(iterate(files, config, progress=progress))
    return ak.concatenate(chunks) if chunks else ak.Array([])


def lazy(files: str | os.PathLike | Iterable, config: DataConfig, step_size: str | int = "100 MB"):
    """The records as a dask-awkward array (``uproot.dask``): nothing is read until ``.compute()``.
    Derived variables and the selection must be numpy-ufunc expressions (``ak.`` functions do not dispatch)."""
    paths = [Path(files)] if isinstance(files, (str, os.PathLike)) else [Path(f) for f in files]
    for p in paths:
        open_tree(p, config)
    arrays = uproot.dask({str(p): config.treename for p in paths}, filter_name=sorted(set(config.branches.values())),
                         step_size=step_size)
    fields = {name: arrays[branch] for name, branch in config.branches.items()}
    derived, selection = config.expressions("data config")
    for name, expression in derived.items():
        fields[name] = expression.evaluate(fields)
    import dask_awkward as dak

    out = dak.zip(fields, depth_limit=1)
    return out[selection.evaluate(fields)] if selection is not None else out


def pad(jagged: ak.Array, length: int, pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(values [N, length] float32, mask [N, length] bool)``: the first ``length`` items of each entry."""
    clipped = ak.pad_none(jagged, length, clip=True, axis=1)
    mask = ak.to_numpy(~ak.is_none(clipped, axis=1))
    values = ak.to_numpy(ak.fill_none(clipped, pad_value)).astype(np.float32)
    return values, mask


def padded(chunk: ak.Array, config: DataConfig, where: str = "data") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every configured input as ``(values [N, C, L], mask [N, L])``, weaver's layout. A NaN or inf among the
    real (unpadded) values is an error naming ``where``, the variable and the entry."""
    out = {}
    for name, spec in config.inputs.items():
        columns = [pad(chunk[v], spec.length, spec.pad_value) for v in spec.vars]
        for var, (values, mask) in zip(spec.vars, columns):
            bad = ~np.isfinite(values) & mask
            if bad.any():
                raise ValueError(f"{where}: variable {var!r} of input {name!r} is NaN or infinite in entry "
                                 f"{int(np.argwhere(bad)[0, 0])} of a chunk; check the branches it comes from "
                                 "(NaN momenta, negative energies under a log)")
        out[name] = (np.stack([c[0] for c in columns], axis=1), columns[0][1])
    return out


class RootWriter:
    """Write TTrees chunk by chunk, LZ4-compressed, published atomically when the block ends::

        with RootWriter("events.root") as out:
            out.extend("hits", {"hit_x": jagged_x, "hit_y": jagged_y, "nparticles": counts})

    Jagged branches get a counter branch each; pass an ``ak.zip`` record (``{"hit": ak.zip({...})}``) to
    share one counter ``nhit`` between ``hit_x``, ``hit_y``, ...
    """

    def __init__(self, path: str | os.PathLike, compression_level: int = 4) -> None:
        self.path, self.level = Path(path), compression_level

    def __enter__(self) -> "RootWriter":
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self.file = uproot.recreate(tmp, compression=uproot.LZ4(self.level))
        self.trees: dict[str, object] = {}
        return self

    def extend(self, treename: str, branches: dict[str, object], counter: str | dict[str, str] | None = None) -> None:
        """Append entries to ``treename`` (created with the first chunk's types). ``counter`` names one
        counter branch shared by all its jagged branches (they must then have equal lengths per entry), or
        maps branch-name prefixes to counters (``{"part_": "jet_nparticles", "sv_": "jet_nsv"}``)."""
        if treename in self.trees:
            self.trees[treename].extend(branches)
        else:  # mktree: assigning to the file would write an RNTuple since uproot 5.7
            prefixes = {"": counter} if isinstance(counter, str) else counter
            naming = {"counter_name": lambda branch: next(c for p, c in prefixes.items() if branch.startswith(p))
                      } if counter else {}
            self.trees[treename] = self.file.mktree(treename, branches, **naming)

    def __exit__(self, *exc) -> bool:
        self.file.close()
        return bool(self._atomic.__exit__(*exc))
