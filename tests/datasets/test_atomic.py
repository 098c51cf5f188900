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
