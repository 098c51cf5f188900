"""The pushforward trick (Brandstetter, Worrall & Welling 2022, arXiv:2202.03376) for the mesh simulators.

A one-step model is trained on true states but rolled out on its own predictions, whose errors are not
the isotropic training noise (for the cylinder: a wake that loses amplitude step by step). With
``pushforward = K`` each training sample is ``K + 1`` consecutive frames of one trajectory; the loss draws
k uniform in 0..K per batch, rolls the model k steps from the first frame without gradient (the steps of
its rollouts, :class:`sims.mesh_rollout.RolloutStep`: prescribed nodes and the forcing following the
ground truth, a cloth model's strain projection included) and applies the usual one-step loss (training
noise included) to the state it reached, against the true next frame. The model thus learns to bring its
own drifted states back to the data. A training step costs up to K extra forward passes without backward;
evaluation batches are single frames, scored one step.

With ``unroll`` U > 0 (flow models) the trained step is followed by U more steps *with* gradient: each takes
the model's own next frame (prescribed nodes from the data) as its input, and the loss is the mean of the
U + 1 one-step losses (each against the true next frame, training noise included), so the gradient sees
how an error of one step changes the next ones (backpropagation through the unrolled rollout, as
"solver-in-the-loop" training does; Um et al. 2020). A step then costs U + 1 forward and backward passes;
sequences hold K + U + 1 frames.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from sims.mesh_rollout import RolloutStep
from sims.mesh_samples import MeshFrames, collate
from sims.meshgraphnet import MeshGraphNet, MeshState, training_targets
from training.trainer import LossFn


class MeshSequences(Dataset):
    """``unroll + 1`` consecutive states of one trajectory (each with its next frame as target), for every
    start frame that has them: ``sequences[i] -> list[MeshState]``.

    Args:
        frames: the single frames of a training file.
        unroll: the steps a sequence spans: K + U (the pushforward's and the unrolled loss's).
    """

    def __init__(self, frames: MeshFrames, unroll: int) -> None:
        if unroll < 1:
            raise ValueError(f"a pushforward sequence needs unroll >= 1, got {unroll}")
        self.frames, self.unroll = frames, unroll
        index = frames.index
        self.starts = [k for k in range(len(index) - unroll)
                       if index[k + unroll] == (index[k][0], index[k][1] + unroll)]
        if not self.starts:
            raise ValueError(f"no trajectory is long enough: sequences of {unroll} steps need {unroll + 2} frames "
                             f"(cloth: {unroll + 3}, one more for the previous position)")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> list[MeshState]:
        return [self.frames[self.starts[i] + j] for j in range(self.unroll + 1)]


def collate_sequences(samples: list[list[MeshState]] | list[MeshState]) -> list[MeshState] | MeshState:
    """A batch of sequences: one collated :class:`MeshState` per position in the sequence; single frames
    (the evaluation set's) are collated as they are."""
    if isinstance(samples[0], MeshState):
        return collate(samples)
    return [collate(list(states)) for states in zip(*samples)]


@torch.no_grad()
def pushed_state(net: MeshGraphNet, states: list[MeshState], steps: int) -> MeshState:
    """The state the model reaches after ``steps`` steps from ``states[0]``, each a rollout's step
    (:class:`sims.mesh_rollout.RolloutStep`: the model's own frames on its loss-mask nodes, the ground truth
    on the prescribed ones, a cloth model's strain projection), with ``states[steps]``'s forcing and target.

    Args:
        net: the network (unwrapped from DDP).
        states: consecutive true states of the same meshes, at least ``steps + 1``.
        steps: model steps to take, 0 gives ``states[0]``.
    """
    state, training = states[0], net.training
    if steps == 0:
        return state
    net.eval()  # as in a rollout; the online normalisers count training inputs only
    try:
        step = RolloutStep(net, state)
        for true_next in states[1:steps + 1]:
            frame = step(state, state.target).to(state.target.dtype)
            state = state.step_to(frame).replace(target=true_next.target, forcing=true_next.forcing)
    finally:
        net.train(training)
    return state


def unrolled_loss(model: torch.nn.Module, states: list[MeshState]) -> tuple[torch.Tensor, dict]:
    """The mean one-step loss of a flow model over ``len(states)`` steps, each after the first taken from the
    previous step's prediction with gradient (its prescribed nodes set to the data's): the normalised
    squared error of every predicted frame against the true one.

    Args:
        model: the flow network (possibly DDP-wrapped), training.
        states: the first state, then the true states whose targets (next frames) the later steps are
            scored against, consecutive frames of the same meshes.
    """
    state, losses = states[0], []
    for true in states[1:] + [None]:
        net, noisy, target, mask = training_targets(model, state)
        prediction = model(noisy)
        losses.append(((prediction - target) ** 2).sum(-1)[mask].mean())
        if true is None:
            break
        frame = torch.where(mask[:, None], net.next_frame(noisy, prediction), state.target)
        state = state.step_to(frame).replace(target=true.target, forcing=true.forcing)
    loss = torch.stack(losses).mean()
    return loss, {"last_step_loss": float(losses[-1].detach())}


def pushforward(loss: LossFn, unroll: int = 0) -> LossFn:
    """``loss`` applied after a pushforward of k ~ U{0..K} model steps (the global generator, seeded by the
    Trainer) when training on sequences of K + ``unroll`` + 1 frames, followed by ``unroll`` steps with
    gradient (:func:`unrolled_loss`, which replaces ``loss``) when ``unroll`` > 0; plain ``loss`` on single
    frames and in evaluation."""

    def pushforward_loss(model: torch.nn.Module, batch: MeshState | list[MeshState]) -> tuple[torch.Tensor, dict]:
        if isinstance(batch, MeshState):
            return loss(model, batch)
        if not model.training:
            return loss(model, batch[0])
        steps = int(torch.randint(len(batch) - unroll, ()))
        state = pushed_state(getattr(model, "module", model), batch, steps)
        if unroll:
            return unrolled_loss(model, [state] + batch[steps + 1:steps + 1 + unroll])
        return loss(model, state)

    return pushforward_loss
