import json

import pytest
import torch

from tests.training.toy import losses, make_trainer
from training import precision
from training.precision import autocast, resolve_precision


@pytest.fixture
def cpu(monkeypatch):
    """The CPU probe with chosen flags and matmul timings (the cache cleared before and after)."""
    def set_cpu(flags: set[str], bf16_seconds: float = 1.0, fp32_seconds: float = 1.0) -> None:
        monkeypatch.setattr(precision, "_cpu_flags", lambda: flags)
        monkeypatch.setattr(precision, "_matmul_seconds",
                            lambda dtype: bf16_seconds if dtype == torch.bfloat16 else fp32_seconds)
        precision.bf16_is_fast.cache_clear()

    yield set_cpu
    precision.bf16_is_fast.cache_clear()


def test_auto_picks_bf16_only_where_the_cpu_has_it_and_the_probe_confirms(cpu):
    cpu(set())  # no bf16 instructions: no probe, fp32
    assert resolve_precision("auto", "cpu") == "fp32"
    cpu({"avx2", "amx_bf16"}, bf16_seconds=0.1)
    assert resolve_precision("auto", "cpu") == "bf16"
    cpu({"avx512_bf16"}, bf16_seconds=0.9)  # flags but no real speed-up
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16" and resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, got 'fp16'"):
        resolve_precision("fp16", "cpu")


def test_autocast_runs_matrix_products_in_bf16_and_leaves_elementwise_work_in_fp32():
    x, w = torch.randn(4, 8), torch.randn(8, 3)
    with autocast("bf16", "cpu"):
        product, total = x @ w, x + 1.0
    assert product.dtype == torch.bfloat16 and total.dtype == torch.float32
    with autocast("fp32", "cpu"):
        assert (x @ w).dtype == torch.float32


def test_the_resolved_precision_is_saved_in_config_json(tmp_path, cpu):
    cpu(set())
    make_trainer(tmp_path / "run", steps=2, precision="auto").fit()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["trainer"]["precision"] == "fp32"


def test_bf16_and_fp32_training_reach_the_same_loss(tmp_path):
    """Same model, data and seed, 150 steps: final eval losses within 10% of each other (stated tolerance),
    and both far below the starting loss."""
    results = {}
    for p in ("fp32", "bf16"):
        results[p] = make_trainer(tmp_path / p, dtype=torch.float32, precision=p, steps=150, dropout=0.0).fit()["loss"]
        assert results[p] < 0.2 * losses(tmp_path / p)[0][1]
    assert results["bf16"] == pytest.approx(results["fp32"], rel=0.10)
    assert results["bf16"] != results["fp32"]  # bf16 really ran
