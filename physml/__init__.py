"""The front door: the ``physml`` command, the demo, and ``load`` for any trained run folder."""
from __future__ import annotations

import os

from torch import nn


def load(run_dir: str | os.PathLike, device: str = "cpu") -> tuple[nn.Module, object]:
    """The trained network of any physml run folder (eval mode, on ``device``) and its run dataclass."""
    from physml.domains import recipes
    from training.recipe import load as load_run

    return load_run(run_dir, recipes(), device)


__all__ = ["load"]
