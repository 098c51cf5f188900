import numpy as np
import pytest

from datasets.trajectories import Trajectory, write_trajectories
from sims.windows import PositionWindows, collate

META = {"dim": 2, "bounds": [[0.1, 0.9], [0.1, 0.9]], "default_connectivity_radius": 0.05}


def _write(path, position, meta=META):
    write_trajectories(path, [Trajectory(position, np.full(position.shape[1], 5))], meta)
    return path


def test_windows_and_collate(tmp_path):
    pos = 0.5 + 0.01 * np.random.default_rng(0).random((10, 4, 2))
    ds = PositionWindows(_write(tmp_path / "t.h5", pos))
    assert len(ds) == 4 and ds[1]["positions"].shape == (4, 7, 2)
    assert np.allclose(ds[1]["positions"][:, 0].numpy(), pos[1], atol=1e-6)
    batch = collate([ds[0], ds[1]])
    assert batch["batch"].tolist() == [0] * 4 + [1] * 4


@pytest.mark.parametrize("case,match", [("nan", "NaN"), ("outside", "bounds"), ("dim", "coordinates"),
                                        ("short", "fewer than")])
def test_bad_trajectories_name_file_and_field(tmp_path, case, match):
    pos = 0.5 + np.zeros((10, 4, 2))
    if case == "nan":
        pos[3, 1, 0] = np.nan
    elif case == "outside":
        pos[5, 2, 1] = 2.0
    elif case == "dim":
        pos = 0.5 + np.zeros((10, 4, 3))
    elif case == "short":
        pos = pos[:5]
    path = _write(tmp_path / "bad.h5", pos)
    with pytest.raises(ValueError, match=f"bad.h5: trajectory 00000.*{match}"):
        PositionWindows(path)


def test_metadata_a_simulator_needs_is_named_when_missing(tmp_path):
    import numpy as np

    from datasets.trajectories import Trajectory, write_trajectories
    from sims.windows import PositionWindows

    write_trajectories(tmp_path / "t.h5", [Trajectory(np.zeros((8, 3, 2), np.float32), np.zeros(3, np.int64))],
                       {"dim": 2, "bounds": [[0, 1], [0, 1]]})
    with pytest.raises(ValueError, match="t.h5: metadata lacks default_connectivity_radius \\(DeepMind"):
        PositionWindows(tmp_path / "t.h5")
