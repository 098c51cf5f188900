"""The one place that detects optional libraries (torch_geometric, torch_scatter), lazily and once."""
from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType

_EXTRA = {"torch_geometric": "pyg", "torch_scatter": "pyg", "pythia8mc": "gen", "fastjet": "gen"}


@lru_cache(maxsize=None)
def optional_module(name: str) -> ModuleType | None:
    """The module ``name`` if it imports, else None; imported on first use only."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def require(name: str) -> ModuleType:
    """The module ``name``, or an ImportError saying which extra installs it."""
    module = optional_module(name)
    if module is None:
        extra = _EXTRA.get(name)
        hint = f"pip install 'physml[{extra}]'" if extra else f"pip install {name}"
        raise ImportError(f"{name} is needed for this feature but is not installed; {hint}")
    return module
