"""`physml data generate cylinder_flow|flag` write valid mesh trajectories with their own meshes."""
import numpy as np

from datasets.meshes import OBSTACLE, MeshTrajectoryReader
from physml.cli import main


def test_generate_cylinder_flow_and_flag(tmp_path):
    assert main(["data", "generate", "cylinder_flow", "--out", str(tmp_path / "c"), "--trajectories", "2",
                 "--frames", "5", "--warmup", "0.05", "--no-progress"]) == 0
    with MeshTrajectoryReader(tmp_path / "c" / "train.h5") as reader:
        a, b = reader[0], reader[1]
        assert a.fields["velocity"].shape == (5, len(a.mesh_pos), 2) and a.fields["pressure"].shape[-1] == 1
        assert len(a.mesh_pos) != len(b.mesh_pos)  # each trajectory has its own cylinder and mesh
        assert np.abs(a.fields["velocity"][:, a.node_type == OBSTACLE]).max() == 0  # no slip
        assert reader.metadata["fields"] == {"velocity": "m/s", "pressure": "m^2/s^2"}
    assert main(["data", "generate", "flag", "--out", str(tmp_path / "f"), "--trajectories", "1", "--frames", "5",
                 "--nx", "6", "--ny", "4", "--no-progress"]) == 0
    with MeshTrajectoryReader(tmp_path / "f" / "test.h5") as reader:
        assert reader[0].fields["world_pos"].shape == (5, 24, 3)
