"""Keep freed memory in the process, so large CPU tensors are not page-faulted in afresh on every use.

glibc serves every allocation above 32 MiB (its largest mmap threshold) with a fresh ``mmap`` and returns it
with ``munmap`` when freed. A message-passing step allocates tens of ``[E, 128]`` tensors of that size per
layer, so each one costs a page fault per 4 KiB page, every step; on the project's 2-core virtual machines
that was half the training step (GNS-size processor at N = 4,000: fwd+bwd 13.9 s -> 6.4 s, forward
5.1 s -> 2.5 s, ``benchmarks/message_passing.py``). :func:`retain_freed_memory` tells glibc (``mallopt``) to
serve large blocks from its heap and never to trim it (a 1 GiB trim threshold was not enough: a backward pass
frees more than that at once, and the next step faulted it all in again), which is what jemalloc and tcmalloc
(the allocators PyTorch's CPU tuning guides recommend preloading) do in effect. The cost is that the process
keeps its peak memory until it exits, and batches whose tensors change size every step fragment the kept
heap: the full ParticleNet (about 10k particles x 16 neighbours per batch of 128 jets, a different count each
step) grew to 11.1 GB after 120 steps on 20k jets and to 16.5 GB after 470 on 150k jets (killed for memory),
against 7.0 GB without retention (9.3 GB after 370 steps on 150k jets), 1.4x slower per step (2.5 against
1.8 s). Trimming the heap
every 10 steps (``malloc_trim``) bought neither (9.1 GB, 2.35 s). ``PHYSML_RETAIN_MEMORY=0`` in the
environment turns retention off for such runs. Other C libraries are left alone.
"""
from __future__ import annotations

import ctypes
import os
import platform
from functools import lru_cache

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_KEEP_BYTES = -1  # never trim the heap
_TOP_PAD_BYTES = 64 << 20


@lru_cache(maxsize=None)
def retain_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (once per process); False where the C library is not glibc or
    ``PHYSML_RETAIN_MEMORY=0`` is set."""
    if os.environ.get("PHYSML_RETAIN_MEMORY", "1") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in (
        (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _KEEP_BYTES), (_M_TOP_PAD, _TOP_PAD_BYTES)))
