"""Shared test settings: CUDA-only tests are skipped on machines without a GPU (CI has none); under
pytest-xdist (``make test`` runs one worker per core) each worker's torch takes its share of the cores."""
import os

import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def pytest_configure(config: pytest.Config) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // workers))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow end-to-end tests first (stable otherwise): under xdist the longest ones must not start last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
