"""Checkpoints: atomic ``step_XXXXXXXX.pt`` files in ``run_dir/checkpoints``, loadable with weights_only=True."""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from datasets.atomic import atomic_path

_NAME = re.compile(r"step_(\d{8})\.pt$")


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:08d}.pt"


def save_checkpoint(run_dir: str | os.PathLike, step: int, state: dict, keep: int | None = None) -> Path:
    """Write ``state`` atomically as the checkpoint of ``step``; keep only the newest ``keep`` files."""
    path = checkpoint_path(run_dir, step)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    if keep is not None:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.unlink()
    return path


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Finished checkpoints, oldest first (temporary files never match)."""
    folder = Path(run_dir) / "checkpoints"
    return sorted(p for p in folder.glob("step_*.pt") if _NAME.search(p.name)) if folder.exists() else []


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint without unpickling arbitrary objects."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a readable physml checkpoint ({err})") from None

