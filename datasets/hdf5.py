"""The common part of our HDF5 stores: an atomically written file stamped with its schema, version and
metadata, a reader that checks them, and :func:`read_array`, the one checked way to read a dataset (kind,
size against free memory, checksum, finite values)."""
from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from datasets.atomic import atomic_open

# written with every float dataset of our stores: a corrupted chunk then fails to read instead of reading as noise
CHECKSUM = {"fletcher32": True}


@contextmanager
def corruption_as_value_error(path: str | os.PathLike) -> Iterator[None]:
    """Turn what HDF5 raises on a damaged file (h5py's OSError, KeyError or RuntimeError from deep inside the
    library, at open or at any later access; a TypeError from an attribute of the wrong kind) into one
    ``ValueError`` naming the file; a ``ValueError`` that does not name it yet gets the file's name in front."""
    try:
        yield
    except FileNotFoundError:
        raise
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path}: {err}") from None
    except (OSError, KeyError, RuntimeError, TypeError) as err:
        raise ValueError(f"{path}: cannot be read, the file is corrupted ({type(err).__name__}: "
                         f"{str(err).strip(chr(39))})") from None


def check_version(path: str | os.PathLike, value: object, newest: int) -> int:
    """A file's ``schema_version`` attribute as an int, refused if it is not one or is newer than ``newest``
    (the reader's); errors name the file."""
    try:
        version = int(str(value).strip())  # an integer, a numpy integer or its digits, never a float
    except ValueError:
        raise ValueError(f"{path}: attribute 'schema_version' is {value!r}, expected an integer") from None
    if version > newest:
        raise ValueError(f"{path}: schema_version {version} is newer than this reader ({newest}); upgrade physml")
    return version


def available_memory() -> int:
    """Bytes of memory available now (Linux: free + reclaimable pages), or a large number if unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def read_array(path: str | os.PathLike, dataset: h5py.Dataset, where: str, kind: str = "f",
               finite: bool = True, rows: int | None = None) -> np.ndarray:
    """``dataset`` read whole (or its first ``rows``), after checking it: ``kind`` ``"f"`` (floats) or ``"i"``
    (integers), a declared size that fits in the free memory, a chunk checksum that matches (when the file has
    one), and (floats, ``finite``) no NaN or inf. Errors name the file and ``where``
    (``"trajectory 00003: 'position'"``)."""
    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(f"{path}: {where} is not a dataset")
    if dataset.dtype.kind != kind and not (kind == "i" and dataset.dtype.kind == "u"):
        expected = "floating-point" if kind == "f" else "integer"
        raise ValueError(f"{path}: {where} has dtype {dataset.dtype}, expected {expected} values")
    shape = dataset.shape if rows is None or not dataset.shape else (min(rows, dataset.shape[0]),) + dataset.shape[1:]
    size = int(np.prod(shape, dtype=np.float64)) * dataset.dtype.itemsize
    if size > available_memory():
        raise ValueError(f"{path}: {where} declares shape {shape} ({size / 2**30:.1f} GiB), more than the "
                         "free memory; the file is corrupted or too large to read whole")
    try:
        values = dataset[()] if rows is None or not dataset.shape else dataset[:rows]
    except (OSError, KeyError, RuntimeError) as err:
        raise ValueError(f"{path}: {where} cannot be read, the file is corrupted ({err})") from None
    if finite and kind == "f" and not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{path}: {where} holds NaN or infinite values (first at index {tuple(int(i) for i in bad)})")
    return values


@contextmanager
def atomic_hdf5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An HDF5 file built in memory and published at ``path`` (atomically) only when the block succeeds.

    HDF5 writes through its own cache and h5py loses the errors of a failed flush (a full disk: the write goes
    on, then the process can crash); built in memory, the file reaches the disk in one ordinary write whose
    failure is a clear ``OSError`` and leaves no file.
    """
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f
    with atomic_open(path, "wb") as fh:
        fh.write(buffer.getbuffer())


@contextmanager
def schema_file(path: str | os.PathLike, schema: str, version: int, metadata: dict) -> Iterator[h5py.File]:
    """An HDF5 file open for writing, published at ``path`` only if the block succeeds."""
    with atomic_hdf5(path) as f:
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
        if not self.path.is_file():  # a pipe or device would block the reader forever
            raise ValueError(f"{self.path}: not a regular file (a folder, pipe or device); expected a {self.what}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise ValueError(f"{self.path}: not a readable HDF5 file ({err})") from None
        try:
            with corruption_as_value_error(self.path):
                attrs = self._file.attrs
                if attrs.get("schema") != self.schema:
                    raise ValueError(f"{self.path}: attribute 'schema' is {attrs.get('schema')!r}, expected "
                                     f"{self.schema!r}")
                check_version(self.path, attrs.get("schema_version", -1), self.version)
                if "metadata" not in attrs:
                    raise ValueError(f"{self.path}: no 'metadata' attribute")
                self.metadata: dict = json.loads(str(attrs["metadata"]))
                if not isinstance(self.metadata, dict):
                    raise ValueError(f"{self.path}: attribute 'metadata' is not a JSON object")
                self.check_metadata()
                self._keys = sorted(self._file.keys())
        except ValueError:
            self._file.close()
            raise

    def check_metadata(self) -> None:
        """Raise ``ValueError`` naming the file and key if ``self.metadata`` breaks the schema (per schema)."""

    def __len__(self) -> int:
        return len(self._keys)

    def group(self, index: int) -> tuple[str, h5py.Group]:
        with corruption_as_value_error(self.path):
            group = self._file[self._keys[index]]
            if not isinstance(group, h5py.Group):
                raise ValueError(f"{self.path}: item {self._keys[index]!r} is not a group")
            return self._keys[index], group

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
