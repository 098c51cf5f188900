"""Timing helpers shared by the benchmarks."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def synchronised(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """``fn`` followed by a CUDA synchronisation when ``device`` is a GPU (so timings include the kernels)."""
    def run() -> object:
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out
    return run


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a large square matrix product of ``dtype`` on ``device`` (n = 512 for bf16 on CPUs that lack
    fast bf16: there a 2048² product takes seconds)."""
    from training.precision import bf16_is_fast

    if dtype == torch.bfloat16 and not bf16_is_fast(device.type):
        n, repeats = 512, 1
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n ** 3 / best_of(synchronised(lambda: a @ b, device), repeats) / 1e9


def count_flops(run: Callable[[], object]) -> float:
    """Matrix-multiply FLOPs of ``run()``, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    return float(counter.get_total_flops())
