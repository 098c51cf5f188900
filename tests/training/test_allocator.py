"""retain_freed_memory: on by default on glibc, off with PHYSML_RETAIN_MEMORY=0 (runs whose batch sizes vary)."""
import os
import platform
import subprocess
import sys

import pytest


def _retains(**env: str) -> str:
    code = "from training.allocator import retain_freed_memory; print(retain_freed_memory())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, **env})
    return done.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="retention is glibc's mallopt")
def test_retention_is_on_by_default_and_off_on_request():
    assert _retains(PHYSML_RETAIN_MEMORY="1") == "True"
    assert _retains(PHYSML_RETAIN_MEMORY="0") == "False"
