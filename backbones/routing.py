"""Routed feed-forward layers (mixture of experts), drop-in for the transformer's MLP.

Each token of a set ``[B, N, D]`` (padding excluded) goes to ``k`` of ``experts`` MLPs; the layer returns
``x + sum_k gate_k * expert_k(LayerNorm(x))``. Routers:

- ``switch`` (Fedus et al. 2022): top-1 of a softmax router, gate = the router's probability;
- ``top2`` (GShard): the two most probable experts, gates renormalised to sum to one;
- ``sinkhorn`` (Sinkhorn-BASE, Clark et al. 2022, after Lewis et al. 2021's BASE layers): while training,
  each token goes to the expert of its largest entry in the balanced transport plan that a few Sinkhorn
  iterations make of the router's logits (every expert then gets about the same number of tokens); at
  inference plain top-1; gate = the router's own probability of the chosen expert;
- ``hash`` (Roller et al. 2021): a fixed, parameter-free, balanced assignment by a hash of an integer token
  feature given by the caller (e.g. a particle's rank in pT); gate 1.

Every expert takes at most ``capacity = ceil(capacity_factor * tokens * k / experts)`` assignments, first
choices before second ones and, among those, larger gates first (batch-prioritised routing, Riquelme et al.
2021), equal gates (hash routing's) by smaller ``route_ids`` (a particle's pT rank: the hardest first), so
the order of the tokens in a set does not matter; an assignment beyond that is dropped and its token passes
through the residual connection alone. The experts run as one padded batched matmul over ``[experts,
longest queue, D]`` (at most the capacity). The router's logits are computed in float32 (also under bf16 autocast).

Auxiliary losses (:func:`routing_loss` collects them after a forward pass): Switch's load-balancing loss
``balance_weight * E * sum_i f_i P_i`` (``f_i`` the fraction of tokens whose first choice is expert i, ``P_i``
the mean router probability of expert i) and the router z-loss ``z_weight * mean(logsumexp(logits)^2)``
(Zoph et al. 2022). :func:`routing_metrics` reports the load per expert and the dropped fraction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

ROUTERS = ("switch", "top2", "sinkhorn", "hash")
HASH_BUCKETS = 4096  # token ids are hashed through a fixed random permutation of this many buckets


@dataclass
class RouterConfig:
    experts: int = 8                  # experts per routed layer
    router: str = field(default="switch", metadata={"choices": ROUTERS})  # switch, top2, sinkhorn or hash
    every: int = 2                    # route every n-th block's MLP (Switch: every other); 1: all of them
    capacity_factor: float = 1.25     # expert capacity = ceil(factor * tokens * k / experts); 0: unlimited
    balance_weight: float = 0.01      # alpha of the load-balancing loss
    z_weight: float = 1e-3            # router z-loss weight
    sinkhorn_iterations: int = 8      # Sinkhorn-BASE's balancing iterations per training step
    hash_seed: int = 0                # seeds hash routing's fixed assignment

    def __post_init__(self) -> None:
        if self.router not in ROUTERS:
            raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {self.router!r}")
        if self.experts < 1 or self.every < 1:
            raise ValueError(f"experts and every must be >= 1, got {self.experts} and {self.every}")

    @property
    def k(self) -> int:
        """Experts per token."""
        return 2 if self.router == "top2" else 1


def sinkhorn(logits: torch.Tensor, iterations: int = 8) -> torch.Tensor:
    """Balanced assignment plan ``[T, E]`` of ``T`` tokens to ``E`` experts from logits ``[T, E]``: each row
    sums to 1 and each column approaches ``T / E`` (alternate normalisation of ``exp(logits)``, in log
    space)."""
    t, e = logits.shape
    log_plan = logits.float()
    for _ in range(iterations):
        log_plan = log_plan - torch.logsumexp(log_plan, 0, keepdim=True) + math.log(t / e)
        log_plan = log_plan - torch.logsumexp(log_plan, 1, keepdim=True)
    return log_plan.exp()


def load_balancing_loss(probs: torch.Tensor, first_choice: torch.Tensor) -> torch.Tensor:
    """Switch's ``E * sum_i f_i P_i`` from router probabilities ``[T, E]`` and first choices ``[T]``; 1 for a
    uniform router with a balanced assignment."""
    experts = probs.shape[1]
    fraction = torch.bincount(first_choice, minlength=experts).to(probs.dtype) / len(first_choice)
    return experts * (fraction * probs.mean(0)).sum()


def queue_positions(expert: torch.Tensor, experts: int) -> torch.Tensor:
    """Place of each assignment ``[A]`` in its expert's queue (0, 1, ... in the order given)."""
    one_hot = F.one_hot(expert, experts)
    return (one_hot.cumsum(0) - 1).gather(1, expert[:, None])[:, 0]


class RoutedFeedForward(nn.Module):
    """Pre-norm routed MLP with a residual connection: ``forward(x [B, N, D], mask [B, N], route_ids [B, N])
    -> [B, N, D]``; padded tokens (mask False) are not routed and come back unchanged.

    Args:
        dim: token width D; hidden: each expert's hidden width; cfg: the router; dropout: after the hidden
        activation and on the output, as :class:`backbones.transformer.FeedForward`.
    """

    def __init__(self, dim: int, hidden: int, cfg: RouterConfig, dropout: float = 0.0) -> None:
        super().__init__()
        self.cfg = cfg
        e = cfg.experts
        self.norm = nn.LayerNorm(dim)
        self.router = None if cfg.router == "hash" else nn.Linear(dim, e, bias=False)
        bound1, bound2 = 1 / math.sqrt(dim), 1 / math.sqrt(hidden)  # nn.Linear's initialisation
        self.w1 = nn.Parameter(torch.empty(e, dim, hidden).uniform_(-bound1, bound1))
        self.b1 = nn.Parameter(torch.empty(e, hidden).uniform_(-bound1, bound1))
        self.w2 = nn.Parameter(torch.empty(e, hidden, dim).uniform_(-bound2, bound2))
        self.b2 = nn.Parameter(torch.empty(e, dim).uniform_(-bound2, bound2))
        self.dropout = nn.Dropout(dropout)
        generator = torch.Generator().manual_seed(cfg.hash_seed)
        self.register_buffer("hash_table", torch.randperm(HASH_BUCKETS, generator=generator) % e, persistent=False)
        self.aux_loss: torch.Tensor | None = None
        self.load: torch.Tensor | None = None      # fraction of assignments per expert [E] (before dropping)
        self.dropped: torch.Tensor | None = None   # fraction of assignments dropped

    def inactive_parameters(self) -> int:
        """Parameters a token leaves idle: those of the ``experts - k`` experts it is not sent to."""
        per_expert = sum(p[0].numel() for p in (self.w1, self.b1, self.w2, self.b2))
        return (self.cfg.experts - self.cfg.k) * per_expert

    def route(self, tokens: torch.Tensor, ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Experts and gates ``[k, T]`` of tokens ``[T, D]``; sets the auxiliary loss."""
        cfg = self.cfg
        if self.router is None:
            if ids is None:
                raise ValueError("hash routing needs route_ids (an integer feature per token)")
            expert = self.hash_table[ids % HASH_BUCKETS][None]
            self.aux_loss = tokens.new_zeros(())
            return expert, torch.ones_like(expert, dtype=tokens.dtype)
        with torch.autocast(tokens.device.type, enabled=False):
            logits = F.linear(tokens.float(), self.router.weight.float())
        probs = logits.softmax(-1)
        if cfg.router == "top2":
            top = probs.topk(min(2, cfg.experts), dim=-1)
            expert, gate = top.indices.T, (top.values / top.values.sum(-1, keepdim=True)).T
        else:
            if cfg.router == "sinkhorn" and self.training:
                expert = sinkhorn(logits.detach(), cfg.sinkhorn_iterations).argmax(-1)
            else:
                expert = probs.argmax(-1)
            expert = expert[None]
            gate = probs.gather(1, expert.T).T
        self.aux_loss = cfg.balance_weight * load_balancing_loss(probs, expert[0]) + \
            cfg.z_weight * torch.logsumexp(logits, -1).square().mean()
        return expert, gate

    def capacity(self, tokens: int) -> int:
        if self.cfg.capacity_factor <= 0:
            return tokens
        return max(1, math.ceil(self.cfg.capacity_factor * tokens * self.cfg.k / self.cfg.experts))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                route_ids: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.norm(x).flatten(0, -2) if mask is None else self.norm(x)[mask]   # [T, D]
        ids = None if route_ids is None else route_ids.flatten() if mask is None else route_ids[mask]
        expert, gate = self.route(tokens, ids)
        k, t = expert.shape
        e, capacity = self.cfg.experts, self.capacity(t)
        expert, gate = expert.reshape(-1), gate.reshape(-1)             # first choices, then second ones
        token = torch.arange(t, device=x.device).repeat(k)
        # queue order: choice, then larger gate, then smaller route id, then token order
        order = torch.arange(k * t, device=x.device) if ids is None else ids.repeat(k).argsort(stable=True)
        priority = torch.arange(k, device=x.device).repeat_interleave(t) * 2.0 + 1.0 - gate.detach().float()
        order = order[priority[order].argsort(stable=True)]
        place = torch.empty_like(expert)
        place[order] = queue_positions(expert[order], e)
        kept = place < capacity
        self.load = torch.bincount(expert, minlength=e).float() / max(len(expert), 1)
        self.dropped = 1 - kept.float().mean() if len(kept) else kept.new_zeros((), dtype=torch.float)
        expert, place, token, gate = expert[kept], place[kept], token[kept], gate[kept]
        longest = int(place.max()) + 1 if len(place) else 0             # the fullest queue: no padding beyond it
        slot = expert * longest + place                                 # flat slots: index_select/index_add
        dim = tokens.shape[-1]
        queue = tokens.new_zeros(e * longest, dim).index_copy(0, slot, tokens.index_select(0, token))
        hidden = self.dropout(F.gelu(torch.baddbmm(self.b1[:, None], queue.view(e, longest, dim), self.w1)))
        out = torch.baddbmm(self.b2[:, None], hidden, self.w2)          # [E, longest <= capacity, D]
        picked = out.reshape(e * longest, dim).index_select(0, slot)
        routed = picked.new_zeros(t, picked.shape[-1]).index_add_(0, token, gate[:, None].to(picked.dtype) * picked)
        if mask is None:
            return x + self.dropout(routed).view_as(x).to(x.dtype)
        update = routed.new_zeros(*x.shape[:-1], routed.shape[-1])
        update[mask] = routed
        return x + self.dropout(update).to(x.dtype)


def routed_layers(model: nn.Module) -> list[RoutedFeedForward]:
    return [m for m in model.modules() if isinstance(m, RoutedFeedForward)]


def routing_loss(model: nn.Module) -> torch.Tensor | float:
    """Sum of the auxiliary losses of the routed layers' last forward pass (0 without routed layers)."""
    losses = [m.aux_loss for m in routed_layers(model) if m.aux_loss is not None]
    return torch.stack(losses).sum() if losses else 0.0


def routing_metrics(model: nn.Module) -> dict[str, float]:
    """Of the last forward pass, averaged over the routed layers: the load of each expert
    (``moe_load_i``, fractions of the assignments), the largest load over the mean load (``moe_max_over_mean``,
    1 when balanced; the worst layer) and the dropped fraction (``moe_dropped``). Empty without routed layers."""
    layers = [m for m in routed_layers(model) if m.load is not None]
    if not layers:
        return {}
    loads = torch.stack([m.load for m in layers])                      # [layers, E]
    metrics = {f"moe_load_{i}": float(v) for i, v in enumerate(loads.mean(0))}
    metrics["moe_max_over_mean"] = float((loads.max(1).values * loads.shape[1]).max())
    metrics["moe_dropped"] = float(torch.stack([m.dropped for m in layers]).mean())
    return metrics
