"""Training a MeshGraphNet on a mesh-trajectory dataset (``cylinder_flow`` or ``flag``) with the shared
Trainer (torchrun-ready). The model kind follows the data: a velocity field gives the flow model, a moving
mesh the cloth model (its rollouts strain-limited to the largest strain in the training data). As in
DeepMind's code the normalisers first accumulate statistics over ``normaliser_warmup`` training batches;
checkpoints are selected by the RMSE of validation rollouts (the number the evaluation reports), not by the
one-step loss. ``pushforward`` K > 0 trains on the model's own rolled-out states (sims/pushforward.py)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sims.constraints import largest_strain
from sims.mesh_rollout import validation_rollout_rmse
from sims.mesh_samples import FIELDS, MeshFrames, collate
from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig, add_training_noise, flow_noise_std
from sims.pushforward import MeshSequences, collate_sequences, pushforward
from sims.refiner import build as build_network, loss_of
from sims.solvers.cylinder_flow import STEADY_WAKE, saved_channel, wake_probe
from training import TrainerConfig
from training.recipe import Built, Recipe
from training.scaling import ScalingTask, steps_for


@dataclass
class MGNRun:
    """Everything a MeshGraphNet run needs; the model kind, its forcing inputs and the flow noise come from
    the data."""

    data_dir: str = "runs/data/cylinder_flow"  # folder with train.h5 and valid.h5 (cylinder_flow or flag)
    mgn: MeshGraphNetConfig = field(default_factory=MeshGraphNetConfig)
    normaliser_warmup: int = 1000  # training batches the normalisers accumulate before the first step
    validation_rollout: int = 50   # steps of the validation rollouts whose RMSE (rollout_rmse) selects checkpoints
    pushforward: int = 0           # K: train after 0..K model steps without gradient (sims/pushforward.py); 0: off
    unroll_loss: int = 0           # U: flow, U more steps with gradient after the trained one (sims/pushforward.py)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/mgn", steps=20_000, batch_size=2, lr=1e-3, schedule="exponential", lr_final=1e-5,
        log_every=50, eval_every=1000, select_by="rollout_rmse"))


def build_model(run: MGNRun) -> MeshGraphNet:
    """A MeshGraphNet, or a PDE-Refiner on one when ``mgn.refinement_steps`` > 0."""
    return build_network(run.mgn)


@torch.no_grad()
def warm_up_normalisers(model: MeshGraphNet, frames: MeshFrames, batches: int, batch_size: int, seed: int) -> None:
    """Feed ``batches`` random noisy training batches through the input and output normalisers (no network
    pass, no step), so the first optimiser steps see settled statistics; they keep accumulating afterwards."""
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(batches):
        index = torch.randint(len(frames), (batch_size,), generator=generator)
        clean = collate([frames[int(i)] for i in index])
        state = add_training_noise(model, clean, generator)
        model.graphs(state)
        model.output_norm(model.target_output(state))
        if model.strain_norm is not None:  # of the clean next frame, as the loss (the springs do not keep noise)
            model.strain_norm(model.strain_target(clean))


def build(run: MGNRun) -> Built:
    if run.pushforward < 0 or run.unroll_loss < 0:
        raise ValueError(f"pushforward and unroll_loss must be >= 0 (model steps before and after the trained one), "
                         f"got {run.pushforward} and {run.unroll_loss}")
    data = Path(run.data_dir)
    train_set, valid_set = MeshFrames(data / "train.h5"), MeshFrames(data / "valid.h5")
    if run.mgn.kind is None:
        run.mgn = dataclasses.replace(run.mgn, kind=train_set.kind)
    if run.mgn.forcing is None:
        run.mgn = dataclasses.replace(run.mgn, forcing=train_set.forcing)
    if (run.mgn.kind, run.mgn.forcing) != (train_set.kind, train_set.forcing):
        raise ValueError(f"{data}: the data is {train_set.kind!r} with {train_set.forcing} forcing features, the "
                         f"model config says {run.mgn.kind!r} with {run.mgn.forcing}")
    if run.mgn.noise_std is None:
        run.mgn = dataclasses.replace(run.mgn, noise_std=flow_noise_std(
            [t.fields[FIELDS["flow"]] for t in train_set.trajectories], [t.node_type for t in train_set.trajectories]))
    if run.mgn.kind == "cloth" and run.mgn.strain_limit is None:
        run.mgn = dataclasses.replace(run.mgn, strain_limit=largest_strain(train_set.trajectories))
    if run.unroll_loss and (run.mgn.kind != "flow" or run.mgn.refinement_steps):
        raise ValueError("unroll_loss is for flow models without refinement steps: the cloth's strain projection "
                         "is not differentiable and the refiner's loss is a denoising loss")
    model = build_model(run)
    warm_up_normalisers(model, train_set, run.normaliser_warmup, run.trainer.batch_size, run.trainer.seed)
    probes = steady = None
    if run.mgn.kind == "flow" and "trajectory_params" in valid_set.metadata:  # the cylinder: where it sheds
        channels = [saved_channel(p) for p in valid_set.metadata["trajectory_params"]]
        probes = [wake_probe(c, t.mesh_pos) for c, t in zip(channels, valid_set.trajectories)]
        steady = [STEADY_WAKE * c.mean_inflow for c in channels]
    metric = validation_rollout_rmse(valid_set.trajectories, run.validation_rollout, probes, steady)
    if run.pushforward or run.unroll_loss:
        return Built(model, MeshSequences(train_set, run.pushforward + run.unroll_loss), valid_set,
                     collate_sequences, pushforward(loss_of(run.mgn), run.unroll_loss), eval_metrics=metric)
    return Built(model, train_set, valid_set, collate, loss_of(run.mgn), eval_metrics=metric)


RECIPE = Recipe("mgn", "MeshGraphNet on a mesh dataset (cylinder_flow or flag)", MGNRun, build, build_model)


def scaling_run(size: int, samples: int, experts: int, data_dir: str, run_dir: str) -> MGNRun:
    """A scaling sweep's run: a MeshGraphNet of latent width ``size`` (10 message-passing steps) trained on
    ``samples`` frames drawn from the fixed training set (batch 2; the reference schedule, one decade of
    learning-rate decay per quarter of the run), evaluated once at the end (one-step loss and the RMSE of
    ``validation_rollout``-step rollouts)."""
    if experts != 1:
        raise ValueError(f"MeshGraphNets have no routed layers: experts must be 1, got {experts}")
    run = MGNRun(data_dir=data_dir, mgn=MeshGraphNetConfig(latent=size, n_steps=10))
    steps = steps_for(samples, run.trainer.batch_size)
    run.trainer = dataclasses.replace(run.trainer, run_dir=run_dir, steps=steps, eval_every=steps, progress=False)
    return run


SCALING = ScalingTask(RECIPE, scaling_run)
