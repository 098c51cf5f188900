"""The common part of our HDF5 stores: an atomically written file stamped with its schema, version and
metadata, and a reader that checks them."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from datasets.atomic import atomic_path


@contextmanager
def schema_file(path: str | os.PathLike, schema: str, version: int, metadata: dict) -> Iterator[h5py.File]:
    """An HDF5 file open for writing, published at ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["schema"] = schema
        f.attrs["schema_version"] = version
        f.attrs["metadata"] = json.dumps(metadata)
        yield f


class SchemaReader:
    """An open HDF5 file of ``schema`` (at most ``version``) with one group per item: ``len(reader)``,
    ``reader.metadata``, ``reader.group(i)``; a context manager. Errors name the file."""

    schema: str
    version: int
    what: str = "file"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such {self.what}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise ValueError(f"{self.path}: not a readable HDF5 file ({err})") from None
        attrs = self._file.attrs
        if attrs.get("schema") != self.schema:
            raise ValueError(f"{self.path}: attribute 'schema' is {attrs.get('schema')!r}, expected {self.schema!r}")
        if int(attrs.get("schema_version", -1)) > self.version:
            raise ValueError(f"{self.path}: schema_version {attrs['schema_version']} is newer than this reader "
                             f"({self.version}); upgrade physml")
        self.metadata: dict = json.loads(attrs["metadata"])
        self._keys = sorted(self._file.keys())

    def __len__(self) -> int:
        return len(self._keys)

    def group(self, index: int) -> tuple[str, h5py.Group]:
        return self._keys[index], self._file[self._keys[index]]

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
