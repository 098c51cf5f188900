import pytest

from sims.data import generate_waterdrop


@pytest.fixture(scope="session")
def tiny_waterdrop(tmp_path_factory):
    """Two small SPH water-drop trajectories (coarse particles), made once per test session."""
    out = tmp_path_factory.mktemp("waterdrop")
    generate_waterdrop(out, seed=1, trajectories=2, frames=30, spacing=0.04, progress=False)
    return out
