"""PDE-Refiner (Lippe et al. 2023, arXiv:2308.05732) on MeshGraphNet: the one-step prediction refined by K
denoising steps of decreasing noise, on the shared diffusion schedule of ``generative/``.

One network sees, besides the MeshGraphNet inputs, an estimate of its normalised output and the refinement
step k (one-hot). Step 0 predicts the output from a zero estimate (the plain MeshGraphNet objective). Step
k = 1..K adds noise of std ``sigma_k = min_noise_std^(k/K)`` to the current estimate and predicts the
velocity ``v = alpha eps - sigma y`` (Salimans & Ho 2022, as in the paper's code); the denoised estimate is
the next one. Training draws k uniformly from 0..K per mesh, so each step gets a (K+1)-th of the samples and
a training step costs what a MeshGraphNet step costs; a rollout step costs K+1 network passes. Small noise
levels make the network attend to the low-amplitude parts of the solution a one-step MSE neglects, which
is what long rollouts lose first. Different noise seeds give an ensemble of rollouts whose spread
estimates the error.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from generative.schedules import VPSchedule
from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig, MeshState, training_loss, training_targets


def refiner_schedule(steps: int, min_noise_std: float) -> VPSchedule:
    """The VP schedule of the refinement noise levels, least noise first: index ``t = K - k`` holds
    ``sigma_k = min_noise_std^(k/K)`` of refinement step k = 1..K.

    Args:
        steps: K, the refinement steps.
        min_noise_std: the noise std of the last step, in (0, 1).
    """
    k = torch.arange(steps, 0, -1, dtype=torch.float64)
    return VPSchedule.from_sigmas(min_noise_std ** (k / steps))


class MeshRefiner(MeshGraphNet):
    """A MeshGraphNet whose one-step prediction is refined by ``cfg.refinement_steps`` denoising steps.

    ``forward(state, estimate, step)`` gives the network output: the normalised prediction at step 0, the
    velocity target at steps k >= 1. :meth:`advance` runs the whole refinement.
    """

    def __init__(self, cfg: MeshGraphNetConfig) -> None:
        if cfg.refinement_steps < 1:
            raise ValueError(f"a refiner needs refinement_steps >= 1, got {cfg.refinement_steps}")
        super().__init__(cfg, extra_inputs=cfg.dim + cfg.refinement_steps + 1)
        self.schedule = refiner_schedule(cfg.refinement_steps, cfg.min_noise_std)

    def forward(self, state: MeshState, estimate: torch.Tensor | None = None,
                step: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            state: a batch of meshes.
            estimate: ``[N, dim]`` the noisy normalised estimate; None: zeros (step 0).
            step: ``[B]`` the refinement step of each mesh, 0..K; None: 0.
        """
        nodes = state.node_type.shape[0]
        if estimate is None:
            estimate = state.mesh_pos.new_zeros(nodes, self.cfg.dim)
        per_node = state.batch.new_zeros(nodes) if step is None else step[state.batch]
        one_hot = F.one_hot(per_node, self.cfg.refinement_steps + 1).to(estimate.dtype)
        return self.net(self.graphs(state, torch.cat([estimate, one_hot], dim=-1))).nodes

    def refine(self, state: MeshState, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[N, dim]``: the normalised prediction after K refinement steps (noise drawn from ``generator``)."""
        steps = self.cfg.refinement_steps
        estimate = self(state)
        for k in range(1, steps + 1):
            t = torch.full_like(state.batch, steps - k)
            noise = torch.randn(estimate.shape, generator=generator, dtype=estimate.dtype, device=estimate.device)
            noisy = self.schedule.add_noise(estimate, noise, t)
            velocity = self(state, noisy, torch.full((len(state),), k, device=t.device))
            estimate, _ = self.schedule.split(velocity, noisy, t, "v_prediction")
        return estimate

    @torch.no_grad()
    def advance(self, state: MeshState, generator: torch.Generator | None = None) -> torch.Tensor:
        """The next frame, refined. The refinement runs in float32 even inside a bf16 autocast region: its
        last noise levels (1e-3 by default) are below bf16's resolution of a unit-scale estimate."""
        with torch.autocast(state.mesh_pos.device.type, enabled=False):
            return self.next_frame(state, self.refine(state, generator))


def refiner_loss(model: nn.Module, state: MeshState) -> tuple[torch.Tensor, dict]:
    """The PDE-Refiner objective on the loss-mask nodes, after MeshGraphNet's training noise (when training):
    per mesh a step k uniform in 0..K; MSE to the normalised target at k = 0, to the velocity target of the
    noised target at k >= 1. Noise and steps come from the global generator (seeded by the Trainer)."""
    net, noisy, target, mask = training_targets(model, state)
    steps = net.cfg.refinement_steps
    step = torch.randint(0, steps + 1, (len(state),), device=target.device)
    t = (steps - step).clamp(max=steps - 1)[state.batch]
    noise = torch.randn_like(target)
    refining = (step > 0)[state.batch][:, None]
    estimate = torch.where(refining, net.schedule.add_noise(target, noise, t), torch.zeros_like(target))
    goal = torch.where(refining, net.schedule.velocity(target, noise, t), target)
    error = ((model(noisy, estimate, step) - goal) ** 2).sum(-1)
    return error[mask].mean(), {}


def build(cfg: MeshGraphNetConfig) -> MeshGraphNet:
    """The MeshGraphNet of a configuration: a :class:`MeshRefiner` when it has refinement steps."""
    return MeshRefiner(cfg) if cfg.refinement_steps else MeshGraphNet(cfg)


def loss_of(cfg: MeshGraphNetConfig):
    """The training loss of a configuration's model."""
    return refiner_loss if cfg.refinement_steps else training_loss
