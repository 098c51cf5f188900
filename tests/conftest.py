"""Shared test settings: CUDA-only tests are skipped on machines without a GPU (CI has none)."""
import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
