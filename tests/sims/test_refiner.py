"""PDE-Refiner on MeshGraphNet: the paper's noise levels, exact recovery with a perfect denoiser, seeded
ensembles, the objective's targets, and a refiner trained, saved and reloaded through the recipe."""
import numpy as np
import pytest
import torch

from sims.mesh_samples import collate, frame_state
from sims.meshgraphnet import MeshGraphNetConfig, MeshState
from sims.refiner import MeshRefiner, refiner_loss, refiner_schedule
from tests.sims.test_meshgraphnet import oscillating_flow


def test_noise_levels_are_min_std_to_the_k_over_K():
    schedule = refiner_schedule(3, 1e-3)
    for k in (1, 2, 3):
        _, sigma = schedule.alpha_sigma(torch.tensor([3 - k]), torch.zeros(1, dtype=torch.float64))
        assert sigma.item() == pytest.approx(1e-3 ** (k / 3), rel=1e-12)


def flow_batch(frames=(2, 4)) -> MeshState:
    trajectories = [oscillating_flow(0), oscillating_flow(1)]
    return collate([frame_state(traj, t, "flow") for traj, t in zip(trajectories, frames)])


class OracleRefiner(MeshRefiner):
    """A refiner whose network knows the answer ``truth`` at every refinement step (the velocity target of the
    noisy input it is given) and is ``offset`` off at step 0."""

    truth: torch.Tensor
    offset: float = 0.3
    calls: list

    def forward(self, state, estimate=None, step=None):
        self.calls.append(None if step is None else step.tolist())
        if estimate is None:
            return self.truth + self.offset
        t = torch.full_like(state.batch, self.cfg.refinement_steps) - step[state.batch]
        alpha, sigma = self.schedule.alpha_sigma(t, estimate)
        return (alpha * estimate - self.truth) / sigma  # x0 = alpha x_t - sigma v


def test_a_perfect_denoiser_recovers_the_truth_from_a_wrong_first_guess():
    torch.manual_seed(0)
    model = OracleRefiner(MeshGraphNetConfig(kind="flow", latent=8, n_steps=1, noise_std=0.0, refinement_steps=3))
    state = flow_batch()
    model.truth, model.calls = torch.randn(len(state.node_type), 2), []
    refined = model.refine(state, torch.Generator().manual_seed(0))
    torch.testing.assert_close(refined, model.truth, rtol=1e-5, atol=1e-5)
    assert model.calls == [None, [1, 1], [2, 2], [3, 3]]


def test_rollouts_of_one_seed_repeat_and_other_seeds_differ():
    from sims.mesh_rollout import mgn_rollouts

    torch.manual_seed(0)
    model = MeshRefiner(MeshGraphNetConfig(kind="flow", latent=16, n_steps=2, noise_std=0.0, refinement_steps=2,
                                           min_noise_std=0.1))
    model.output_norm(torch.randn(100, 2))  # unit-scale outputs, so the sampling noise shows
    model.eval()
    trajectories = [oscillating_flow(0)]
    a, b, c = (mgn_rollouts(model, trajectories, 4, "fp32", seed=s)[0].predicted for s in (0, 0, 1))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_the_objective_targets_the_output_at_step_0_and_the_velocity_after():
    torch.manual_seed(0)
    model = MeshRefiner(MeshGraphNetConfig(kind="flow", latent=8, n_steps=1, noise_std=0.0, refinement_steps=2,
                                           min_noise_std=0.01)).eval()
    state = flow_batch()
    seen = {}

    def record(module, args, output):
        seen["estimate"], seen["step"] = args[1], args[2]
    model.register_forward_hook(record)
    torch.manual_seed(0)
    loss, _ = refiner_loss(model, state)
    torch.manual_seed(0)  # the same draws: the step of each mesh, then the noise
    step = torch.randint(0, 3, (2,))
    noise = torch.randn(len(state.node_type), 2)
    assert torch.equal(seen["step"], step) and (step == 0).any() and (step > 0).any()
    target = model.output_norm(model.target_output(state))
    t = (2 - step).clamp(max=1)[state.batch]
    refining = (step > 0)[state.batch][:, None]
    expected_estimate = torch.where(refining, model.schedule.add_noise(target, noise, t), 0.0)
    torch.testing.assert_close(seen["estimate"], expected_estimate)
    goal = torch.where(refining, model.schedule.velocity(target, noise, t), target)
    with torch.no_grad():
        output = model(state, seen["estimate"], step)
    mask = model.loss_mask(state)
    torch.testing.assert_close(loss, ((output - goal) ** 2).sum(-1)[mask].mean())


def test_a_refiner_trains_through_the_recipe_and_reloads(tmp_path):
    from datasets.meshes import write_mesh_trajectories
    from sims.mesh_rollout import mgn_rollouts
    from sims.train_mgn import RECIPE, MGNRun
    from training import TrainerConfig
    from training.recipe import load, train

    metadata = {"dt": 0.01, "fields": {"velocity": "m/s"}}
    write_mesh_trajectories(tmp_path / "train.h5", [oscillating_flow(0), oscillating_flow(1)], metadata)
    write_mesh_trajectories(tmp_path / "valid.h5", [oscillating_flow(2)], metadata)
    run = MGNRun(data_dir=str(tmp_path), mgn=MeshGraphNetConfig(latent=8, n_steps=1, refinement_steps=2),
                 normaliser_warmup=4, validation_rollout=3,
                 trainer=TrainerConfig(run_dir=str(tmp_path / "run"), steps=4, batch_size=2, eval_every=2,
                                       select_by="rollout_rmse", progress=False))
    metrics = train(RECIPE, run)
    assert np.isfinite(metrics["rollout_rmse"])
    model, _ = load(tmp_path / "run", [RECIPE])
    assert isinstance(model, MeshRefiner) and model.cfg.refinement_steps == 2
    rollout, = mgn_rollouts(model.eval(), [oscillating_flow(3)], 3, "fp32")
    assert np.isfinite(rollout.predicted).all()


def test_ensemble_spread_equals_the_error_of_a_reliable_ensemble():
    from sims.mesh_rollout import MeshRollout, ensemble_mean

    rng = np.random.default_rng(0)
    scale = np.arange(1, 6)[:, None, None]  # the uncertainty grows along the rollout
    centre = rng.normal(size=(5, 4000, 2))
    truth, *members = (centre + scale * rng.normal(size=centre.shape) for _ in range(5))  # 4 members
    mean, spread = ensemble_mean([MeshRollout(0, m, truth, 0.01) for m in members])
    np.testing.assert_allclose(mean.predicted, np.mean(members, axis=0))
    np.testing.assert_allclose(spread, np.sqrt(mean.squared_error), rtol=0.05)
    np.testing.assert_allclose(spread, scale.ravel() * np.sqrt(1.25), rtol=0.05)  # sigma sqrt((M + 1) / M)
    with pytest.raises(ValueError, match="at least 2"):
        ensemble_mean(members[:1])
