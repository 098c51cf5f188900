"""DistributedDataParallel on 2 CPU processes matches one process with the same global batch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.toy import losses, make_gan_trainer, make_trainer, mse

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["regression", "gan"])
def test_torchrun_two_processes_match_single_process(tmp_path, task):
    if task == "gan":  # two optimisers, each part under its own DDP wrapper
        make_gan_trainer(tmp_path / "single").fit()
    else:
        make_trainer(tmp_path / "single", loss_fn=mse, dropout=0.0).fit()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "-m", "tests.training.ddp_run", str(tmp_path / "ddp")] + (["gan"] if task == "gan" else [])
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    single, ddp = losses(tmp_path / "single"), losses(tmp_path / "ddp")
    assert len(single) == len(ddp) == 30
    for (s1, l1), (s2, l2) in zip(single, ddp):
        assert s1 == s2 and l2 == pytest.approx(l1, rel=1e-9, abs=1e-12)
