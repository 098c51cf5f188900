"""Checkpoints: atomic ``step_XXXXXXXX.pt`` files in ``run_dir/checkpoints``, loadable with weights_only=True.

Each checkpoint has a ``step_XXXXXXXX.pt.sha256`` beside it, written after it; loading verifies it, so bytes
changed on disk (a bad copy, a failing drive) fail loudly instead of loading as wrong weights. A checkpoint
without its checksum (written by an older physml, or a crash between the two files) loads unverified.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch

from datasets.atomic import atomic_open, atomic_path

_NAME = re.compile(r"step_(\d{8})\.pt$")


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:08d}.pt"


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def best_path(run_dir: str | os.PathLike) -> Path:
    """Where the selected weights go (``TrainerConfig.select_by``)."""
    return Path(run_dir) / "checkpoints" / "best.pt"


def _write(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    with atomic_open(_checksum_path(path)) as fh:
        fh.write(f"{_sha256(path)}  {path.name}\n")


def save_best(run_dir: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` (the selected model) atomically as ``checkpoints/best.pt``, then its checksum."""
    path = best_path(run_dir)
    _write(path, state)
    return path


def remove_best(run_dir: str | os.PathLike) -> None:
    path = best_path(run_dir)
    path.unlink(missing_ok=True)
    _checksum_path(path).unlink(missing_ok=True)


def model_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint evaluation loads: ``best.pt`` when the run selected one, else the newest."""
    best = best_path(run_dir)
    if best.is_file():
        return best
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(run_dir: str | os.PathLike, step: int, state: dict, keep: int | None = None) -> Path:
    """Write ``state`` atomically as the checkpoint of ``step``, then its checksum; keep only the newest
    ``keep`` checkpoints."""
    path = checkpoint_path(run_dir, step)
    _write(path, state)
    if keep is not None:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.unlink()
            _checksum_path(old).unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Finished checkpoints, oldest first (temporary files never match)."""
    folder = Path(run_dir) / "checkpoints"
    return sorted(p for p in folder.glob("step_*.pt") if _NAME.search(p.name)) if folder.exists() else []


# what a checkpoint must hold to be resumed (``load`` needs only the model)
RESUMABLE = ("model", "optimizer", "scheduler", "rng", "step")


def inference_weights(state: dict) -> dict:
    """The weights a loaded checkpoint is used with: the weight average when training kept one
    (``TrainerConfig.ema_decay``), else the trained weights."""
    return state["ema"]["weights"] if "ema" in state else state["model"]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    required: tuple[str, ...] = ("model",)) -> dict:
    """Load a checkpoint without unpickling arbitrary objects, after verifying its checksum.

    Args:
        path: a ``step_XXXXXXXX.pt`` file.
        map_location: where tensors go.
        required: entries the checkpoint must have (:data:`RESUMABLE` to resume training).
    """
    path = Path(path)
    if not path.is_file():  # a pipe or device would block torch.load forever
        raise ValueError(f"{path}: not a regular file; expected a physml checkpoint")
    checksum = _checksum_path(path)
    if checksum.is_file():
        expected = checksum.read_text().split()[0] if checksum.read_text().strip() else ""
        if _sha256(path) != expected:
            raise ValueError(f"{path}: its bytes do not match {checksum.name}; the checkpoint is corrupted")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zip, pickle and unpickling-policy errors alike: the file is not ours
        raise ValueError(f"{path}: not a readable physml checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    missing = [key for key in required if not isinstance(state, dict) or key not in state]
    if missing:
        need = "load the model" if "model" in missing else "resume training"
        raise ValueError(f"{path}: the checkpoint has no {', '.join(repr(k) for k in missing)} entry, needed to "
                         f"{need} (expected a checkpoint written by physml training)")
    return state
