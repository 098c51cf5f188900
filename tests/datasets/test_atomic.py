import subprocess
import sys

import pytest

from datasets.atomic import atomic_open, atomic_path


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "sub" / "new.bin") as tmp:
            tmp.write_bytes(b"x")
            raise KeyboardInterrupt
    assert not (tmp_path / "sub" / "new.bin").exists() and not list((tmp_path / "sub").iterdir())


def test_successful_write_replaces(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_open(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"


def test_outputs_never_replace_or_enter_their_inputs(tmp_path):
    from datasets.atomic import refuse_overwriting_inputs

    data = tmp_path / "data"
    data.mkdir()
    (data / "event.nc").write_text("radar")
    (tmp_path / "link.nc").symlink_to(data / "event.nc")
    for out in (data / "event.nc", tmp_path / "link.nc", data / ".." / "data" / "event.nc", data, data / "eval"):
        with pytest.raises(ValueError, match="choose another output path"):
            refuse_overwriting_inputs(out, [data / "event.nc", data])
    refuse_overwriting_inputs(tmp_path / "forecast.nc", [data / "event.nc", data])
    assert (data / "event.nc").read_text() == "radar"


FILL_THE_DISK = """
import resource, signal, sys
import numpy as np
from datasets.trajectories import Trajectory, write_trajectories
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
big = Trajectory(np.random.default_rng(0).random((100, 200, 2)).astype(np.float32), np.zeros(200, np.int64))
try:
    write_trajectories(sys.argv[1], [big] * 4, {"dim": 2})
except OSError as err:
    print(err)
"""


def test_a_full_disk_gives_one_clear_error_and_no_file(tmp_path):
    """HDF5 written in place lost the error and crashed with signal 11; now the process reports and exits."""
    target = tmp_path / "train.h5"
    done = subprocess.run([sys.executable, "-c", FILL_THE_DISK, str(target)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{target}: file too large while writing it; nothing was written (free some " \
                                  "space or choose another output folder)"
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())
