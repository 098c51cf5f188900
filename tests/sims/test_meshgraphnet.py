"""MeshGraphNet: world edges against brute force, translation invariance, online normalisers, and a small
model fitting a batch of flag frames and flow frames."""
import numpy as np
import pytest
import torch

from datasets.meshes import MeshTrajectory
from gnn.normaliser import OnlineNormaliser
from sims.mesh_rollout import MeshRollout, wake_period_error
from sims.mesh_samples import collate, frame_state
from sims.meshgraphnet import (MeshGraphNet, MeshGraphNetConfig, add_training_noise, edge_length_loss,
                               flow_noise_std, mesh_edge_strain, training_loss, world_edges)
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


def test_edge_length_loss_sees_stretch_not_rigid_motion(flag_traj):
    model = MeshGraphNet(MeshGraphNetConfig(kind="cloth", latent=8, n_steps=1, edge_loss=1.0))
    pinned = collate([frame_state(flag_traj, t, "cloth") for t in (10, 20)])
    model.output_norm(model.target_output(pinned))  # normaliser statistics from the true outputs
    model.eval()

    def loss(state, target: torch.Tensor) -> float:  # of the normalised output that predicts ``target``
        return float(edge_length_loss(model, state, model.output_norm(model.target_output(state.replace(
            target=target))), state.target))

    shift = torch.tensor([0.01, -0.02, 0.03])
    assert loss(pinned, pinned.target) < 1e-10
    assert loss(pinned, pinned.target + shift) > 1e-3  # the pole's nodes follow the data, as in rollouts
    free = pinned.replace(node_type=pinned.node_type * 0)  # every node predicted
    assert loss(free, free.target + shift) < 1e-8  # rigid motion costs nothing
    centre = free.target.mean(0)
    lengths = (free.target[free.senders] - free.target[free.receivers]).norm(dim=-1)
    expected = ((0.002 * lengths / model.output_norm.std.mean()) ** 2).mean()
    assert np.isclose(loss(free, centre + 1.002 * (free.target - centre)), float(expected), rtol=1e-2)  # 0.2% strain
    with pytest.raises(ValueError, match="edge_loss"):
        MeshGraphNetConfig(kind="flow", edge_loss=1.0)
    with pytest.raises(ValueError, match="edge_loss"):
        MeshGraphNetConfig(kind="cloth", edge_loss=1.0, refinement_steps=2)


def test_strain_output_is_trained_on_the_clean_next_frames_edge_strains(flag_traj):
    torch.manual_seed(0)
    model = MeshGraphNet(MeshGraphNetConfig(kind="cloth", latent=8, n_steps=1, strain_output=True))
    state = collate([frame_state(flag_traj, t, "cloth") for t in (10, 20)])
    centre = state.target.mean(0)
    stretched = state.replace(target=centre + 1.002 * (state.target - centre))
    assert torch.allclose(model.strain_target(stretched), 1.002 * (model.strain_target(state) + 1) - 1, atol=1e-6)
    model.strain_norm(model.strain_target(state))
    nodes, strain = model(state, with_strain=True)
    assert nodes.shape == (len(state.node_type), 3) and strain.shape == (len(state.senders), 1)
    noisy = add_training_noise(model, state)  # moves the positions, not the edge strains the network reads
    assert torch.equal(noisy.edge_strain, mesh_edge_strain(state.world_pos, state))
    assert noisy.step_to(noisy.target).edge_strain is None
    loss, logs = training_loss(model.train(), state)
    loss.backward()
    assert logs["strain_loss"] > 0 and model.net.edge_decoder.phi[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="no strain output"):
        MeshGraphNet(MeshGraphNetConfig(kind="cloth", latent=8, n_steps=1))(state, with_strain=True)


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


def test_flow_noise_is_half_the_rms_frame_change_of_normal_nodes():
    rng = np.random.default_rng(0)
    velocities = [rng.normal(size=(6, 5, 2)), rng.normal(size=(4, 3, 2))]
    types = [np.array([0, 0, 4, 0, 6]), np.array([0, 5, 0])]
    changes = [velocities[k][t + 1, i, c] - velocities[k][t, i, c] for k in range(2)
               for t in range(len(velocities[k]) - 1) for i in range(len(types[k])) if types[k][i] == 0
               for c in range(2)]
    assert flow_noise_std(velocities, types) == pytest.approx(0.5 * np.sqrt(np.mean(np.square(changes))), rel=1e-12)


def oscillating_flow(seed: int, frames: int = 8) -> MeshTrajectory:
    from sims.solvers.cylinder_flow import Channel, channel_mesh

    mesh_pos, cells, node_type = channel_mesh(Channel(length=0.5, height=0.2, center=(0.1, 0.1), radius=0.03,
                                                      h_cylinder=0.03, h_far=0.06), seed=seed)
    t = np.arange(frames)[:, None, None] * 0.1
    p = mesh_pos[None]
    velocity = np.concatenate([np.sin(3 * p[..., 1:] + t + seed), np.cos(2 * p[..., :1] - t)], axis=-1)
    return MeshTrajectory(mesh_pos, cells, node_type, {"velocity": velocity})


def test_batched_rollouts_equal_one_at_a_time_and_keep_prescribed_nodes():
    from datasets.meshes import NORMAL, OUTFLOW
    from sims.mesh_rollout import mgn_rollouts

    torch.manual_seed(0)
    model = MeshGraphNet(MeshGraphNetConfig(kind="flow", latent=16, n_steps=2, noise_std=0.0)).eval()
    trajectories = [oscillating_flow(0), oscillating_flow(1, frames=6)]
    together = mgn_rollouts(model, trajectories, precision="fp32")
    assert [r.predicted.shape[0] for r in together] == [5, 5]  # as far as the shortest goes
    for traj, batched in zip(trajectories, together):
        alone, = mgn_rollouts(model, [traj], steps=5, precision="fp32")
        np.testing.assert_allclose(batched.predicted, alone.predicted, rtol=1e-5, atol=1e-6)
        prescribed = (traj.node_type != NORMAL) & (traj.node_type != OUTFLOW)
        truth = traj.fields["velocity"][1:6, prescribed].astype(np.float32)
        assert prescribed.any() and np.array_equal(batched.predicted[:, prescribed], truth)


def test_training_warms_up_normalisers_sets_the_flow_noise_and_selects_by_validation_rollout(tmp_path):
    import json

    from datasets.meshes import write_mesh_trajectories
    from sims.train_mgn import RECIPE, MGNRun
    from training import TrainerConfig
    from training.checkpoint import best_path, load_checkpoint
    from training.recipe import train

    metadata = {"dt": 0.01, "fields": {"velocity": "m/s"}}
    write_mesh_trajectories(tmp_path / "train.h5", [oscillating_flow(0), oscillating_flow(1)], metadata)
    write_mesh_trajectories(tmp_path / "valid.h5", [oscillating_flow(2)], metadata)
    run = MGNRun(data_dir=str(tmp_path), mgn=MeshGraphNetConfig(latent=8, n_steps=1), normaliser_warmup=7,
                 validation_rollout=4, trainer=TrainerConfig(run_dir=str(tmp_path / "run"), steps=6, batch_size=2,
                                                             eval_every=2, select_by="rollout_rmse", progress=False))
    built = RECIPE.build(run)
    assert int(built.model.node_norm.calls) == 7 and int(built.model.output_norm.calls) == 7
    train(RECIPE, run)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["run"]["mgn"]
    velocities = [oscillating_flow(k).fields["velocity"] for k in (0, 1)]
    assert saved["noise_std"] == pytest.approx(flow_noise_std(velocities, [oscillating_flow(0).node_type,
                                                                           oscillating_flow(1).node_type]))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [(r["rollout_rmse"], r["step"]) for r in rows if r["split"] == "eval"]
    assert len(evaluations) == 3 and load_checkpoint(best_path(tmp_path / "run"))["step"] == min(evaluations)[1]


def test_wake_period_error_compares_the_shedding_periods_at_the_probe():
    t = np.arange(60)[:, None]

    def rollout(true_period: float | None, model_period: float | None) -> MeshRollout:
        def field(period: float | None) -> np.ndarray:  # [T, 3 nodes, 2]: the probe is node 1
            v = np.zeros((60, 3, 2))
            if period:
                v[:, 1:2, 1] = np.sin(2 * np.pi * t / period + 0.3)
            return v
        return MeshRollout(0, field(model_period), field(true_period), 0.0)

    assert np.isclose(wake_period_error([rollout(20, 22)], [1]), 0.1, atol=0.01)
    assert np.isclose(wake_period_error([rollout(20, 20), rollout(20, None), rollout(None, 15)], [1] * 3), 0.5)
    assert np.isnan(wake_period_error([rollout(None, 15)], [1]))  # no true wake sheds: nothing to compare
    # a true wake of RMS 0.7 below a threshold of 1 is steady: only the first rollout is compared
    assert np.isclose(wake_period_error([rollout(20, 20), rollout(20, 40)], [1] * 2, [0.1, 1.0]), 0.0)
