"""Strain limiting: the analytic two-node case, a perturbed flag brought within its
bound with pinned nodes fixed, no change where the bound holds, the data's largest strain against brute force,
and cloth rollouts that stay within the bound; projection onto given strains, and the rollouts of a model that
predicts them."""
import numpy as np
import pytest
import torch

from datasets.meshes import NORMAL
from sims.constraints import StrainLimiter, largest_strain
from sims.mesh import mesh_edges
from sims.solvers.flag import FlagConfig, flag_trajectory, make_flag


def strains(x: torch.Tensor, edges: np.ndarray, rest: torch.Tensor) -> torch.Tensor:
    return (x[edges[:, 0]] - x[edges[:, 1]]).norm(dim=-1) / rest - 1


def mesh_limiter(traj, x: torch.Tensor, limit: float, sweeps: int = 200):
    """The flag's edges, their rest lengths and a limiter that keeps the non-NORMAL nodes fixed."""
    edges = mesh_edges(traj.cells)
    rest = torch.as_tensor(np.linalg.norm(traj.mesh_pos[edges[:, 0]] - traj.mesh_pos[edges[:, 1]], axis=-1),
                           dtype=x.dtype)
    movable = torch.as_tensor(traj.node_type == NORMAL)
    return edges, rest, movable, StrainLimiter(edges, rest.numpy(), movable.numpy(), limit, sweeps=sweeps)


@pytest.fixture(scope="module")
def flag():
    return flag_trajectory(make_flag(FlagConfig(nx=9, ny=6)), 12, seed=3)


def test_a_stretched_edge_with_one_pinned_end_comes_back_to_the_bound():
    x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.2, 0.0]], dtype=torch.float64)
    edges, rest = np.array([[0, 1]]), np.ones(1)
    out = StrainLimiter(edges, rest, np.array([False, True]), 0.05)(x)
    assert torch.equal(out[0], x[0])
    assert torch.allclose(out[1], torch.tensor([0.0, 1.05, 0.0], dtype=torch.float64), atol=1e-12)
    free = StrainLimiter(edges, rest, np.ones(2, bool), 0.05)(x)
    assert torch.allclose(free.mean(0), x.mean(0)) and float((free[1] - free[0]).norm()) == pytest.approx(1.05)
    with pytest.raises(ValueError, match="limit must be > 0"):
        StrainLimiter(edges, rest, np.ones(2, bool), 0.0)


def test_a_perturbed_flag_is_brought_within_the_bound_and_its_pinned_nodes_stay(flag):
    x = torch.as_tensor(flag.fields["world_pos"][8], dtype=torch.float64)
    edges, rest, movable, limiter = mesh_limiter(flag, x, 0.02, sweeps=200)
    noisy = x + 0.03 * torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    noisy[~movable] = x[~movable]
    assert strains(noisy, edges, rest).abs().max() > 0.3
    out = limiter(noisy)
    assert strains(out, edges, rest).abs().max() < 0.02 + 1e-4
    assert torch.equal(out[~movable], noisy[~movable])


def test_positions_within_the_bound_are_not_changed(flag):
    x = torch.as_tensor(flag.fields["world_pos"][8], dtype=torch.float64)
    edges, rest, _, _ = mesh_limiter(flag, x, 1.0)
    bound = float(strains(x, edges, rest).abs().max()) * 1.01
    assert torch.equal(mesh_limiter(flag, x, bound)[3](x), x)


def test_largest_strain_is_the_brute_force_maximum(flag):
    x, cells, mesh_pos = flag.fields["world_pos"], flag.cells, flag.mesh_pos
    edges = {tuple(e) for e in mesh_edges(cells)}
    brute = max(abs(np.linalg.norm(x[t, i] - x[t, j]) / np.linalg.norm(mesh_pos[i] - mesh_pos[j]) - 1)
                for t in range(len(x)) for i, j in edges)
    assert largest_strain([flag]) == pytest.approx(brute, rel=1e-6)
    assert 0 < brute < 0.2  # a stiff cloth


def test_cloth_rollouts_stay_within_the_models_strain_limit(flag):
    from sims.mesh_rollout import mgn_rollouts
    from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig

    torch.manual_seed(0)
    config = dict(kind="cloth", latent=8, n_steps=1)
    free = MeshGraphNet(MeshGraphNetConfig(**config, strain_limit=0)).eval()
    limited = MeshGraphNet(MeshGraphNetConfig(**config, strain_limit=0.03)).eval()
    limited.load_state_dict(free.state_dict())
    for model in (free, limited):  # an untrained network whose outputs are ~5 cm per step: the free cloth tears
        model.output_norm.train()(0.05 * torch.randn(1000, 3, generator=torch.Generator().manual_seed(1)))
    edges, rest, _, _ = mesh_limiter(flag, torch.zeros(1, dtype=torch.float64), 1.0)
    worst = {}
    for name, model in (("free", free), ("limited", limited)):
        rollout, = mgn_rollouts(model, [flag], steps=8, precision="fp32")
        frames = torch.as_tensor(rollout.predicted, dtype=torch.float64)
        worst[name] = max(float(strains(f, edges, rest).abs().max()) for f in frames)
    assert worst["free"] > 0.3 and worst["limited"] < 0.03 * 1.1  # 200 sweeps against random 5 cm kicks
    with pytest.raises(ValueError, match="only for cloth"):
        MeshGraphNetConfig(kind="flow", strain_limit=0.1)


def test_training_a_cloth_model_sets_its_strain_limit_to_the_datas_largest(tmp_path, flag):
    from datasets.meshes import write_mesh_trajectories
    from sims.meshgraphnet import MeshGraphNetConfig
    from sims.train_mgn import RECIPE, MGNRun

    other = flag_trajectory(make_flag(FlagConfig(nx=9, ny=6, wind=7.0)), 12, seed=4)
    metadata = {"dt": 0.02, "fields": {"world_pos": "m", "wind": "m/s"}}
    write_mesh_trajectories(tmp_path / "train.h5", [flag, other], metadata)
    write_mesh_trajectories(tmp_path / "valid.h5", [flag], metadata)
    run = MGNRun(data_dir=str(tmp_path), mgn=MeshGraphNetConfig(latent=8, n_steps=1), normaliser_warmup=1)
    RECIPE.build(run)
    expected = largest_strain([flag, other])
    assert run.mgn.strain_limit == pytest.approx(expected) and expected > 0
    kept = MGNRun(data_dir=str(tmp_path), mgn=MeshGraphNetConfig(latent=8, n_steps=1, strain_limit=0),
                  normaliser_warmup=1)
    RECIPE.build(kept)
    assert kept.mgn.strain_limit == 0


def test_a_flag_is_projected_onto_given_consistent_strains(flag):
    x = torch.as_tensor(flag.fields["world_pos"][8], dtype=torch.float64)
    edges, rest, movable, limiter = mesh_limiter(flag, x, 0.05, sweeps=2000)
    free = StrainLimiter(edges, rest.numpy(), np.ones(len(x), bool), 0.05, sweeps=20000, tolerance=1e-7)
    centre = x.mean(0)
    stretched = centre + 1.003 * (x - centre)  # every edge 0.3% longer than in x: a consistent set of strains
    goal = strains(stretched, edges, rest)
    out = free(x, goal)
    assert torch.allclose(strains(out, edges, rest), goal, atol=1e-5)  # Gauss-Seidel converges slowly
    assert torch.allclose(free(x, torch.full_like(goal, 0.2)), free(x, torch.full_like(goal, 0.05)))  # clipped
    pinned = limiter(x, goal)
    assert torch.equal(pinned[~movable], x[~movable])
    moved = torch.as_tensor(np.isin(edges, np.flatnonzero(movable.numpy())).any(1))
    assert float((strains(pinned, edges, rest) - goal)[moved].abs().mean()) < 0.1 * float(goal[moved].abs().mean())


def constant_strain_model(sweeps: int = 200):
    """An untrained strain-output cloth model that moves the nodes by ~1 cm and predicts 0.4% strain on every
    edge (consistent with a uniformly stretched sheet), projected with ``sweeps`` sweeps."""
    from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig

    torch.manual_seed(0)
    model = MeshGraphNet(MeshGraphNetConfig(kind="cloth", latent=8, n_steps=1, strain_limit=0.05,
                                            strain_output=True, strain_sweeps=sweeps)).eval()
    model.output_norm.train()(0.01 * torch.randn(1000, 3, generator=torch.Generator().manual_seed(1)))
    model.strain_norm.train()(torch.tensor([[-1.0], [1.0]]))  # mean 0, std 1
    model.eval()
    decoder = model.net.edge_decoder.phi[-1]
    with torch.no_grad():
        decoder.weight.zero_()
        decoder.bias.fill_(0.004)
    return model


def test_rollouts_of_a_strain_output_model_take_its_predicted_strains(flag):
    from sims.mesh_rollout import mgn_rollouts
    from sims.meshgraphnet import MeshGraphNetConfig

    model = constant_strain_model()
    edges, rest, movable, _ = mesh_limiter(flag, torch.zeros(1, dtype=torch.float64), 1.0)
    rollout, = mgn_rollouts(model, [flag], steps=5, precision="fp32")
    moved = torch.as_tensor(np.isin(edges, np.flatnonzero(movable.numpy())).any(1))
    for frame in torch.as_tensor(rollout.predicted, dtype=torch.float64):
        assert float(strains(frame, edges, rest)[moved].median()) == pytest.approx(0.004, abs=2e-4)
    with pytest.raises(ValueError, match="strain_output"):
        MeshGraphNetConfig(kind="cloth", strain_output=True, strain_limit=0)
    with pytest.raises(ValueError, match="strain_output"):
        MeshGraphNetConfig(kind="flow", strain_output=True)


def test_more_sweeps_bring_a_rollout_closer_to_the_predicted_strains(flag):
    from sims.mesh_rollout import mgn_rollouts
    from sims.meshgraphnet import MeshGraphNetConfig

    edges, rest, movable, _ = mesh_limiter(flag, torch.zeros(1, dtype=torch.float64), 1.0)
    moved = torch.as_tensor(np.isin(edges, np.flatnonzero(movable.numpy())).any(1))
    residual = {}
    for sweeps in (2, 2000):
        rollout, = mgn_rollouts(constant_strain_model(sweeps), [flag], steps=3, precision="fp32")
        frames = torch.as_tensor(rollout.predicted, dtype=torch.float64)
        residual[sweeps] = max(float((strains(f, edges, rest)[moved] - 0.004).abs().mean()) for f in frames)
    assert residual[2000] < 0.2 * residual[2] and residual[2000] < 2e-4
    with pytest.raises(ValueError, match="strain_sweeps"):
        MeshGraphNetConfig(kind="cloth", strain_sweeps=0)
