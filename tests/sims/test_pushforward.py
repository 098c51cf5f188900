"""The pushforward trick: sequences of consecutive frames, the pushed state equal to the model's own
rollout (prescribed nodes and forcing from the ground truth), the loss drawing 0..K steps, the unrolled
loss with gradient through its steps, and training."""
import copy
import dataclasses

import numpy as np
import pytest
import torch

from datasets.meshes import NORMAL, OUTFLOW, write_mesh_trajectories
from sims.mesh_rollout import first_frame, mgn_rollouts
from sims.mesh_samples import MeshFrames, frame_state
from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig, training_loss
from sims.pushforward import MeshSequences, collate_sequences, pushed_state, pushforward, unrolled_loss
from sims.solvers.flag import FlagConfig, flag_trajectory, make_flag
from tests.sims.test_meshgraphnet import oscillating_flow

FLOW_META = {"dt": 0.01, "fields": {"velocity": "m/s"}}


def test_sequences_are_consecutive_frames_of_one_trajectory(tmp_path):
    write_mesh_trajectories(tmp_path / "train.h5", [oscillating_flow(0, frames=8), oscillating_flow(1, frames=6)],
                            FLOW_META)
    frames = MeshFrames(tmp_path / "train.h5")
    sequences = MeshSequences(frames, unroll=2)
    assert len(sequences) == (8 - 1 - 2) + (6 - 1 - 2)
    for i in range(len(sequences)):
        states = sequences[i]
        assert len(states) == 3 and len({len(s.node_type) for s in states}) == 1
        for now, after in zip(states, states[1:]):
            assert torch.equal(now.target, after.velocity)
    batch = collate_sequences([sequences[0], sequences[4]])
    assert len(batch) == 3 and all(len(state) == 2 for state in batch)
    assert len(collate_sequences([frames[0], frames[1]])) == 2  # single frames: the evaluation set's
    with pytest.raises(ValueError, match="10 frames"):
        MeshSequences(frames, unroll=8)


@pytest.mark.parametrize("kind, cloth", [("flow", {}), ("cloth", {}), ("cloth", {"strain_limit": 0.002}),
                                         ("cloth", {"strain_limit": 0.05, "strain_output": True})])
def test_pushed_state_is_the_models_own_rollout(kind, cloth):
    if kind == "flow":
        traj, cfg = oscillating_flow(0), MeshGraphNetConfig(kind="flow", latent=16, n_steps=2, noise_std=0.0)
    else:  # the strain projection (limiter or predicted strains) is part of the rollout's step
        traj = flag_trajectory(make_flag(FlagConfig(nx=7, ny=5)), 8, seed=1)
        cfg = MeshGraphNetConfig(kind="cloth", latent=16, n_steps=2, forcing=6, **cloth)
    torch.manual_seed(0)
    model = MeshGraphNet(cfg).eval()
    start, steps = first_frame(kind), 3
    states = [frame_state(traj, start + j, kind) for j in range(steps + 1)]
    rollout, = mgn_rollouts(model, [traj], steps=steps, precision="fp32")
    pushed = pushed_state(model, states, steps)
    field = pushed.velocity if kind == "flow" else pushed.world_pos
    np.testing.assert_allclose(field.numpy(), rollout.predicted[steps - 1], rtol=1e-5, atol=1e-6)
    truth = traj.fields["velocity" if kind == "flow" else "world_pos"]
    assert torch.equal(pushed.target, torch.as_tensor(truth[start + steps + 1], dtype=torch.float32))
    if kind == "cloth":
        np.testing.assert_allclose(pushed.prev_world_pos.numpy(), rollout.predicted[steps - 2], rtol=1e-5, atol=1e-6)
        assert torch.equal(pushed.forcing, states[steps].forcing)
    free = np.isin(traj.node_type, [NORMAL, OUTFLOW] if kind == "flow" else [NORMAL])
    assert not np.allclose(field.numpy()[free], truth[start + steps][free], atol=1e-3)  # the model's, not the data's
    assert pushed_state(model, states, 0) is states[0]


def test_pushforward_loss_draws_the_steps_and_scores_the_pushed_state():
    torch.manual_seed(0)
    model = MeshGraphNet(MeshGraphNetConfig(kind="flow", latent=16, n_steps=2, noise_std=0.01))
    traj = oscillating_flow(0)
    batch = collate_sequences([[frame_state(traj, t + j, "flow") for j in range(3)] for t in (0, 2)])
    loss = pushforward(training_loss)
    model.train()
    drawn = set()
    for seed in range(12):  # copies: a training pass moves the online normalisers
        torch.manual_seed(seed)
        value, _ = loss(copy.deepcopy(model), batch)
        torch.manual_seed(seed)
        steps = int(torch.randint(len(batch), ()))
        twin = copy.deepcopy(model)
        expected, _ = training_loss(twin, pushed_state(twin, batch, steps))
        assert twin.training
        assert value.item() == pytest.approx(expected.item(), rel=1e-6)
        drawn.add(steps)
    assert drawn == {0, 1, 2}
    calls = int(model.node_norm.calls)
    pushed_state(model, batch, 2)
    assert int(model.node_norm.calls) == calls and model.training  # rolled out as in evaluation, mode restored
    model.eval()  # evaluation: one step from the true first frame, and single frames as they are
    assert loss(model, batch)[0].item() == pytest.approx(training_loss(model, batch[0])[0].item(), rel=1e-6)
    assert loss(model, batch[1])[0].item() == pytest.approx(training_loss(model, batch[1])[0].item(), rel=1e-6)


def frozen_normalisers(model: MeshGraphNet, state) -> None:
    """Accumulate the normalisers once on ``state`` and stop them, so training and evaluation passes agree."""
    model.train()
    model.graphs(state)
    model.output_norm(model.target_output(state) + 0.01 * torch.randn(len(state.target), 2))
    for norm in (model.node_norm, model.output_norm, *model.edge_norms):
        norm.max_accumulations = 1


def test_unrolled_loss_is_the_rollouts_error_with_gradient_through_the_steps():
    torch.manual_seed(0)
    model = MeshGraphNet(MeshGraphNetConfig(kind="flow", latent=16, n_steps=2, noise_std=0.0))
    traj = oscillating_flow(0)
    states = [frame_state(traj, j, "flow") for j in range(3)]
    frozen_normalisers(model, states[0])
    value, logs = unrolled_loss(model, states)
    rollout, = mgn_rollouts(model.eval(), [traj], steps=3, precision="fp32")  # frames 1..3 from frame 0
    model.train()
    mask = model.loss_mask(states[0]).numpy()
    std = model.output_norm.std.numpy()
    errors = [(((rollout.predicted[k] - traj.fields["velocity"][k + 1]) / std) ** 2).sum(-1)[mask].mean()
              for k in range(3)]
    assert value.item() == pytest.approx(np.mean(errors), rel=1e-4)
    assert logs["last_step_loss"] == pytest.approx(errors[-1], rel=1e-4)
    # the same losses on the rollout's states, detached: equal in value, but no gradient through the steps
    detached = [states[0]] + [states[k].replace(velocity=torch.as_tensor(rollout.predicted[k - 1], dtype=torch.float32))
                              for k in (1, 2)]
    independent = torch.stack([training_loss(model, s)[0] for s in detached]).mean()
    assert independent.item() == pytest.approx(value.item(), rel=1e-4)
    weights = list(model.net.parameters())
    through, alone = (torch.cat([g.ravel() for g in torch.autograd.grad(v, weights, retain_graph=True)])
                      for v in (value, independent))
    assert not torch.allclose(through, alone, rtol=1e-3, atol=1e-8)


def test_training_with_pushforward(tmp_path):
    from sims.train_mgn import RECIPE, MGNRun
    from training import TrainerConfig
    from training.recipe import train

    write_mesh_trajectories(tmp_path / "train.h5", [oscillating_flow(0), oscillating_flow(1)], FLOW_META)
    write_mesh_trajectories(tmp_path / "valid.h5", [oscillating_flow(2)], FLOW_META)
    trainer = TrainerConfig(run_dir=str(tmp_path / "run"), steps=4, batch_size=2, eval_every=2, progress=False)
    run = MGNRun(data_dir=str(tmp_path), mgn=MeshGraphNetConfig(latent=8, n_steps=1), normaliser_warmup=2,
                 validation_rollout=3, pushforward=2, trainer=trainer)
    assert len(RECIPE.build(run).train_set) == 2 * (8 - 1 - 2)
    train(RECIPE, run)
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert sum('"eval"' in row for row in rows) == 2
    unrolled = dataclasses.replace(run, pushforward=1, unroll_loss=2, trainer=dataclasses.replace(
        trainer, run_dir=str(tmp_path / "unrolled")))
    assert len(RECIPE.build(unrolled).train_set) == 2 * (8 - 1 - 3)
    train(RECIPE, unrolled)
    assert '"last_step_loss"' in (tmp_path / "unrolled" / "metrics.jsonl").read_text()
    with pytest.raises(ValueError, match="pushforward and unroll_loss must be >= 0"):
        RECIPE.build(MGNRun(data_dir=str(tmp_path), pushforward=-1))
    flag = flag_trajectory(make_flag(FlagConfig(nx=7, ny=5)), 8, seed=1)
    for split in ("train", "valid"):
        write_mesh_trajectories(tmp_path / "flag" / f"{split}.h5", [flag],
                                {"dt": 0.02, "fields": {"world_pos": "m", "wind": "m/s"}})
    with pytest.raises(ValueError, match="unroll_loss is for flow models"):
        RECIPE.build(MGNRun(data_dir=str(tmp_path / "flag"), unroll_loss=1))
