"""Gato's tokenisation (Reed et al. 2022, section 2.1): every task's data as one flat sequence of integers.

- Continuous values are mu-law companded, ``F(x) = sign(x) ln(1 + mu |x|) / ln(1 + M mu)`` (mu = 100,
  M = 256), clipped to [-1, 1] and cut into 1024 uniform bins; a token decodes to its bin's centre, so a
  value in [-M, M] comes back within half a bin in companded space (relative error up to
  ln(1 + M mu) / bins = 1% for |x| >> 1 / mu, absolute 1e-4 near 0).
- Discrete values (class labels) get their own range of tokens below the continuous ones, as Gato keeps text
  and discrete actions in [0, 32000) and continuous values in [32000, 33024).
- A task's example is ``[task token] inputs [separator] targets``: the task token says which task this is (a
  learned embedding per task, Gato's prompt in its simplest form), the separator marks where the targets
  start, and :func:`sequence_loss` trains on the target tokens only.

Vocabulary: ``[0, discrete)`` discrete values, ``[discrete, discrete + bins)`` continuous bins, then the
separator, one token per task, and padding.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F


def mu_law(x: torch.Tensor, mu: float = 100.0, limit: float = 256.0) -> torch.Tensor:
    """``sign(x) ln(1 + mu |x|) / ln(1 + limit mu)``: [-limit, limit] onto [-1, 1], fine near 0."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(limit * mu)


def inverse_mu_law(y: torch.Tensor, mu: float = 100.0, limit: float = 256.0) -> torch.Tensor:
    """The inverse of :func:`mu_law` on [-1, 1]."""
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(limit * mu)) / mu


@dataclass(frozen=True)
class Packed:
    """Token sequences ``tokens [B, T]`` (long), ``loss_mask [B, T]`` (True on target tokens) and
    ``positions [B, T]`` (index of each token within its input or target segment, for position embeddings)."""

    tokens: torch.Tensor
    loss_mask: torch.Tensor
    positions: torch.Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, index) -> "Packed":
        return Packed(self.tokens[index], self.loss_mask[index], self.positions[index])

    def to(self, device) -> "Packed":
        return Packed(self.tokens.to(device), self.loss_mask.to(device), self.positions.to(device))


@dataclass(frozen=True)
class Tokenizer:
    """Tokens of continuous and discrete values, and of task examples.

    Args:
        tasks: the task names, one task token each.
        bins: uniform bins of the companded range [-1, 1].
        discrete: tokens reserved for integer values ``0 .. discrete - 1`` (class labels).
        mu, limit: the mu-law's mu and M.
    """

    tasks: Sequence[str] = ()
    bins: int = 1024
    discrete: int = 2
    mu: float = 100.0
    limit: float = 256.0

    @property
    def separator(self) -> int:
        return self.discrete + self.bins

    @property
    def padding(self) -> int:
        return self.separator + 1 + len(self.tasks)

    @property
    def vocab(self) -> int:
        return self.padding + 1

    def task_token(self, task: str) -> int:
        if task not in self.tasks:
            raise ValueError(f"unknown task {task!r}; the tokenizer knows {', '.join(self.tasks) or 'none'}")
        return self.separator + 1 + list(self.tasks).index(task)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous values (any shape) to tokens in ``[discrete, discrete + bins)``; beyond +-limit they clip."""
        companded = mu_law(x.float(), self.mu, self.limit).clamp(-1.0, 1.0)
        index = ((companded + 1.0) * (self.bins / 2)).floor().long().clamp(0, self.bins - 1)
        return index + self.discrete

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Continuous tokens back to values: the centre of each bin, through the inverse mu-law."""
        index = tokens - self.discrete
        if ((index < 0) | (index >= self.bins)).any():
            raise ValueError("decode takes continuous-value tokens only")
        return inverse_mu_law((index.float() + 0.5) * (2.0 / self.bins) - 1.0, self.mu, self.limit)

    def encode_discrete(self, values: torch.Tensor) -> torch.Tensor:
        """Integer values in ``[0, discrete)`` as their own tokens."""
        if ((values < 0) | (values >= self.discrete)).any():
            raise ValueError(f"discrete values must lie in [0, {self.discrete})")
        return values.long()

    def pack(self, task: str, inputs: torch.Tensor, targets: torch.Tensor) -> Packed:
        """``[task] inputs [separator] targets`` for a batch of examples of one task.

        Args:
            inputs: ``[B, n]`` tokens of the inputs (from :meth:`encode` or :meth:`encode_discrete`).
            targets: ``[B, m]`` tokens of what the model must predict.
        """
        b = inputs.shape[0]
        head = torch.full((b, 1), self.task_token(task), dtype=torch.long)
        sep = torch.full((b, 1), self.separator, dtype=torch.long)
        tokens = torch.cat([head, inputs.long(), sep, targets.long()], 1)
        loss_mask = torch.zeros_like(tokens, dtype=torch.bool)
        loss_mask[:, -targets.shape[1]:] = True
        n, m = inputs.shape[1], targets.shape[1]
        positions = torch.cat([torch.zeros(1), torch.arange(n), torch.zeros(1), torch.arange(m)]).long()
        return Packed(tokens, loss_mask, positions.expand(b, -1))

    def collate(self, packs: Sequence[Packed]) -> Packed:
        """Sequences of several tasks in one batch, right-padded with the padding token (never a target)."""
        length = max(p.tokens.shape[1] for p in packs)

        def pad(t: torch.Tensor, value) -> torch.Tensor:
            return F.pad(t, (0, length - t.shape[1]), value=value)

        return Packed(torch.cat([pad(p.tokens, self.padding) for p in packs]),
                      torch.cat([pad(p.loss_mask, False) for p in packs]),
                      torch.cat([pad(p.positions, 0) for p in packs]))


def sequence_loss(logits: torch.Tensor, packed: Packed) -> torch.Tensor:
    """Next-token cross-entropy on the target tokens only: logits at position t predict token t + 1, and count
    where token t + 1 is a target (Gato masks observations and prompts the same way).

    Args:
        logits: ``[B, T, vocab]`` of a causal model over ``packed.tokens``.
    """
    predicted, wanted = logits[:, :-1], packed.tokens[:, 1:]
    mask = packed.loss_mask[:, 1:]
    return F.cross_entropy(predicted[mask], wanted[mask])
