"""Atomic writes: a file is either the old one, the complete new one, or absent; never half written.

Writers produce ``name.tmp`` in the destination folder, flush it to disk, then ``os.replace`` it onto
``name`` (atomic on POSIX within one file system). On any exception the temporary file is removed.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path


# what a write raises when the disk, the quota or the file-size limit is reached
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a library to write to; publish it on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + ".tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in FULL:
            full = OSError(f"{final}: {os.strerror(err.errno).lower()} while writing it; nothing was written "
                           "(free some space or choose another output folder)")
            full.errno = err.errno
            raise full from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """``open`` for writing (modes ``w``/``wb``) that publishes the file only when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` to fill; on success its files move into ``path`` (created if
    needed), on any exception it is removed: an output of several files appears whole or not at all."""
    final = Path(path)
    tmp = final.with_name(final.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        final.mkdir(parents=True, exist_ok=True)
        for item in sorted(tmp.iterdir()):
            os.replace(item, final / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def refuse_overwriting_inputs(out: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Raise ``ValueError`` if ``out`` is one of ``inputs`` (after resolving links and ``..``) or lies inside
    an input folder: a command's output never replaces or mixes with what it reads."""
    target = Path(out).resolve()
    for given in inputs:
        source = Path(given).resolve()
        if target == source or (source.is_dir() and source in target.parents):
            raise ValueError(f"{out}: the output would {'replace' if target == source else 'go inside'} the input "
                             f"{given}; choose another output path")
