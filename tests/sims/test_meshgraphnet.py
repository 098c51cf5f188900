"""MeshGraphNet: world edges against brute force, translation invariance, online normalisers, and a small
model fitting a batch of flag frames and flow frames."""
import numpy as np
import pytest
import torch

from datasets.meshes import MeshTrajectory
from gnn.normaliser import OnlineNormaliser
from sims.mesh_samples import collate, frame_state
from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig, training_loss, world_edges
from sims.solvers.flag import FlagConfig, flag_trajectory, make_flag


@pytest.fixture(scope="module")
def flag_traj() -> MeshTrajectory:
    return flag_trajectory(make_flag(FlagConfig(nx=9, ny=6)), 30, seed=1)


def test_world_edges_are_the_close_pairs_that_are_not_mesh_edges(flag_traj):
    state = frame_state(flag_traj, 25, "cloth")
    radius = 0.2
    s, r = world_edges(state, radius)
    x = flag_traj.fields["world_pos"][25]
    mesh = set(zip(state.senders.tolist(), state.receivers.tolist()))
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    expected = {(i, j) for i, j in zip(*np.nonzero(d < radius)) if i != j and (i, j) not in mesh}
    assert set(zip(s.tolist(), r.tolist())) == expected and len(expected) > 0


def test_cloth_model_is_translation_invariant(flag_traj):
    torch.manual_seed(0)
    model = MeshGraphNet(MeshGraphNetConfig(kind="cloth", latent=16, n_steps=2, world_radius=0.2)).double().eval()
    state = frame_state(flag_traj, 20, "cloth")
    state = state.replace(mesh_pos=state.mesh_pos.double(), world_pos=state.world_pos.double(),
                          prev_world_pos=state.prev_world_pos.double())
    shift = torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)
    moved = state.replace(world_pos=state.world_pos + shift, prev_world_pos=state.prev_world_pos + shift)
    assert torch.allclose(model(state), model(moved), atol=1e-9)
    assert torch.allclose(model.advance(moved), model.advance(state) + shift, atol=1e-9)


def test_online_normaliser_accumulates_then_freezes():
    norm = OnlineNormaliser(2, max_accumulations=2)
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(50, 2, generator=g) * 3 + 1 for _ in range(3))
    norm(a)
    norm(b)
    seen = torch.cat([a, b]).double()
    assert torch.allclose(norm.mean.double(), seen.mean(0), atol=1e-6)
    assert torch.allclose(norm.std.double(), seen.std(0, unbiased=False), atol=1e-6)
    norm(c)  # past max_accumulations: frozen
    norm.eval()
    assert torch.allclose(norm.mean.double(), seen.mean(0), atol=1e-6)
    assert torch.allclose(norm.inverse(norm(c)), c, atol=1e-5)


@pytest.mark.parametrize("kind", ["cloth", "flow"])
def test_small_meshgraphnet_fits_a_batch(kind, flag_traj):
    if kind == "flow":  # a smooth rotating flow on the flag's mesh: velocity changes that depend on position
        t = np.arange(12)[:, None, None] * 0.1
        p = flag_traj.mesh_pos[None]
        velocity = np.concatenate([np.sin(3 * p[..., 1:] + t), np.cos(2 * p[..., :1] - t)], axis=-1)
        traj = MeshTrajectory(flag_traj.mesh_pos, flag_traj.cells, flag_traj.node_type * 0, {"velocity": velocity})
    else:
        traj = flag_traj
    torch.manual_seed(0)
    model = MeshGraphNet(MeshGraphNetConfig(kind=kind, latent=32, n_steps=3, noise_std=0.0, world_radius=0.1))
    batch = collate([frame_state(traj, t, kind) for t in (5, 8, 11 if kind == "cloth" else 10)])
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    first = None
    for _ in range(300):
        loss, _ = training_loss(model, batch)
        first = first or loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < 0.02 * first
