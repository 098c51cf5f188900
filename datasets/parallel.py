"""Generating a dataset in independent parts, in parallel: the one way the generators use several cores."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import TypeVar

T = TypeVar("T")


def map_tasks(fn: Callable[..., T], tasks: Sequence[tuple], workers: int = 1) -> Iterator[T]:
    """``fn(*task)`` for every task, results in task order: in ``min(workers, len(tasks))`` spawned processes
    when that is more than one (``fn`` and the tasks must pickle; spawn, so no fork of a threaded parent),
    otherwise in this process. Each task should write its own part, so that a run interrupted between tasks
    resumes by leaving out the parts that exist.

    Args:
        fn: a module-level function.
        tasks: its positional arguments, one tuple per call.
        workers: processes to use at most.
    """
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=get_context("spawn")) as pool:
            yield from pool.map(fn, *zip(*tasks))
    else:
        for task in tasks:
            yield fn(*task)
