"""Numeric precision of training and inference: ``auto | fp32 | bf16``.

``bf16`` runs the network under ``torch.autocast(dtype=torch.bfloat16)``: matrix products and convolutions in
bfloat16, while parameters (the master weights), optimiser state, losses, normalisers, positions and time
integration stay float32 (they live outside the autocast region or are elementwise ops, which autocast leaves
alone). ``auto`` picks bf16 where the device multiplies bfloat16 matrices fast and fp32 elsewhere:

- CUDA: compute capability 8.0 or newer (Ampere on), where bf16 has tensor cores.
- CPU: the CPU must advertise AMX-BF16 or AVX512-BF16 (``/proc/cpuinfo``; without those flags oneDNN falls back
  to a path that was measured 300x *slower* than float32 on an AMD EPYC), and a short matmul probe must find
  bf16 at least 1.5x faster than float32. The answer is cached for the process.
"""
from __future__ import annotations

import contextlib
import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS = ("auto", "fp32", "bf16")
_CPU_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def _matmul_seconds(dtype: torch.dtype, n: int = 512, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return time.perf_counter() - start


@lru_cache(maxsize=None)
def bf16_is_fast(device_type: str) -> bool:
    """Whether bfloat16 matrix products are markedly faster than float32 on this kind of device (cached)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    if device_type != "cpu" or not (_cpu_flags() & _CPU_BF16_FLAGS):
        return False
    return _matmul_seconds(torch.bfloat16) * 1.5 <= _matmul_seconds(torch.float32)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``fp32`` or ``bf16`` for a requested ``precision`` on ``device`` (``auto``: bf16 where it is fast).

    Args:
        precision: ``auto``, ``fp32`` or ``bf16``.
        device: a device, or one of ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    kind = str(device).split(":")[0]
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    return "bf16" if bf16_is_fast(kind) else "fp32"


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The autocast region of a resolved ``precision`` (a no-op for fp32).

    Args:
        precision: ``fp32`` or ``bf16`` (``auto`` is resolved first).
        device: where the network runs.
    """
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
