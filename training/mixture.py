"""Multi-task data: a balanced mixture of datasets, and batches grouped by task, each group collated (padded) on
its own so that no example is padded to another task's shapes."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset


class Mixture(Dataset):
    """Items of several datasets, balanced: item ``i`` is item ``(i // k) mod n_t`` of dataset ``t = i mod k``
    (``k`` datasets, the ``t``-th of ``n_t`` items), so every task is seen equally often whatever its size.

    Args:
        parts: one indexable dataset per task.
    """

    def __init__(self, parts: Sequence[Sequence[Any]]) -> None:
        if not parts or not all(len(p) for p in parts):
            raise ValueError("a mixture needs at least one dataset and no empty ones")
        self.parts = parts

    def __len__(self) -> int:
        return len(self.parts) * max(len(p) for p in self.parts)

    def __getitem__(self, i: int) -> Any:
        part = self.parts[i % len(self.parts)]
        return part[(i // len(self.parts)) % len(part)]


@dataclass(frozen=True)
class TaskBatches:
    """A batch as one collated group per task present, in order of first appearance."""

    groups: tuple[Any, ...]

    def __len__(self) -> int:
        return sum(len(g) for g in self.groups)

    def to(self, device) -> TaskBatches:
        return TaskBatches(tuple(g.to(device) for g in self.groups))


def collate_by_task(items: list, task: Callable[[Any], Hashable], collate: Callable[[list], Any]) -> TaskBatches:
    """Group ``items`` by ``task(item)`` (in order of first appearance) and ``collate`` each group.

    Args:
        items: examples of a batch, of any tasks.
        task: an example's task (any hashable key).
        collate: makes one batch of a list of examples of one task.
    """
    groups: dict[Hashable, list] = {}
    for item in items:
        groups.setdefault(task(item), []).append(item)
    return TaskBatches(tuple(collate(g) for g in groups.values()))
