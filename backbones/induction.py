"""Induction heads (Olsson et al. 2022) reproduced on a small attention-only transformer.

Data: sequences of ``length`` tokens that repeat a segment of random period P (``periods``, up to half the
length, the period of the evaluation sequences; the segment's tokens drawn without replacement from
``vocab``), so a token is predictable only from an earlier copy of the previous token and the period cannot
be read off the position. Models: token and learned position embeddings, ``layers`` causal pre-norm
attention layers (backbones.attention.CrossAttention with a causal logit bias, no MLPs), a final norm and
unembedding. The 2-layer model can compose a previous-token head with
an induction head; the 1-layer control cannot.

Logged every ``log_every`` steps on a fixed evaluation batch of repeated random tokens (a random half,
then the same half again, as the paper's prefix-matching evaluation): the loss on the second half; the
in-context learning score (the paper's: loss at a late token minus loss at an early token; here the mean
over the last 8 positions minus over the first 8); and every head's prefix-matching (induction) score on the
queries of the repeated half and previous-token score on every query but the first
(backbones.interpret.head_scores: 1 = all attention on the target).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from backbones.attention import CrossAttention
from backbones.interpret import attention_probe, detection_pattern, head_scores
from datasets.atomic import atomic_folder


class AttentionOnly(nn.Module):
    """``forward(tokens [B, T]) -> logits [B, T, vocab]``: causal attention-only transformer."""

    def __init__(self, vocab: int, length: int, layers: int, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(0.02 * torch.randn(length, dim))
        self.layers = nn.ModuleList(CrossAttention(dim, heads=heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.unembed = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.embed(tokens) + self.position[:n]
        causal = torch.full((n, n), float("-inf"), device=tokens.device).triu(1)
        bias = causal.expand(tokens.shape[0], self.layers[0].heads, n, n)
        for layer in self.layers:
            x = layer(x, bias=bias)
        return self.unembed(self.norm(x))


def periodic_sequences(batch: int, length: int, vocab: int, periods: tuple[int, int],
                       generator: torch.Generator) -> torch.Tensor:
    """``[batch, length]`` tokens repeating a segment of distinct tokens with a period drawn in ``periods``."""
    period = torch.randint(periods[0], periods[1] + 1, (batch,), generator=generator)
    segments = torch.rand(batch, vocab, generator=generator).argsort(1)  # a random permutation per row
    return segments.gather(1, torch.arange(length)[None] % period[:, None])


def run(out: Path = Path("runs/induction"), *, steps: int = 3000, vocab: int = 64, length: int = 64,
        periods: tuple[int, ...] = (8, 32), batch_size: int = 32, lr: float = 1e-3, log_every: int = 50,
        seed: int = 0) -> dict:
    """Train a 2-layer attention-only transformer and the 1-layer control; write ``metrics.csv``,
    ``summary.json`` and ``induction_heads.png`` to ``out``.

    Args:
        out: output folder (replaced atomically).
        steps: Adam steps per model.
        vocab: token types.
        length: sequence length.
        periods: shortest and longest period of the training sequences.
        batch_size: sequences per step.
        lr: Adam learning rate.
        log_every: steps between measurements.
        seed: seeds the models and the data.
    """
    if len(periods) != 2 or not 2 <= periods[0] <= periods[1] <= min(vocab, length // 2):
        raise ValueError(f"periods must be two values 2 <= lo <= hi <= min(vocab, length / 2), got {periods}")
    g = torch.Generator().manual_seed(seed + 1)
    half = torch.rand(256, vocab, generator=g).argsort(1)[:, : length // 2]
    evaluation = torch.cat([half, half], 1)  # repeated random tokens
    rows: list[dict] = []
    for layers in (2, 1):
        torch.manual_seed(seed)
        model = AttentionOnly(vocab, length, layers)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        data = torch.Generator().manual_seed(seed + 2)
        for step in range(steps + 1):
            if step % log_every == 0:
                rows.append({"layers": layers, "step": step, **_measure(model, evaluation)})
            if step == steps:
                break
            tokens = periodic_sequences(batch_size, length, vocab, (periods[0], periods[1]), data)
            logits = model(tokens[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab), tokens[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    summary = _summary(rows, vocab)
    with atomic_folder(out) as tmp:
        with open(tmp / "metrics.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
        _figure(rows, summary, tmp / "induction_heads.png")
    return summary


@torch.no_grad()
def _measure(model: AttentionOnly, tokens: torch.Tensor) -> dict[str, float]:
    model.eval()
    with attention_probe(model) as maps:
        logits = model(tokens[:, :-1])
    model.train()
    losses = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none").mean(0)  # per position
    half = tokens.shape[1] // 2
    row = {"loss_second_half": float(losses[half:].mean()), "icl_score": float(losses[-8:].mean() - losses[:8].mean())}
    inputs = tokens[:, :-1]
    for kind, key, first in (("induction", "prefix", half), ("previous", "previous", 1)):
        pattern = detection_pattern(inputs, kind)[:, first:]  # the query rows that have a target
        for i in range(len(model.layers)):
            for h, score in enumerate(head_scores(maps[f"layers.{i}"][:, :, first:], pattern).tolist()):
                row[f"{key}_L{i}H{h}"] = score
    return row


def _summary(rows: list[dict], vocab: int) -> dict:
    """Per model: final loss and scores, best prefix-matching head, and the step the phase change happens
    (the best head's prefix-matching score first above half its final value)."""
    out: dict = {"chance_loss": math.log(vocab)}
    for layers in (2, 1):
        mine = [r for r in rows if r["layers"] == layers]
        last = mine[-1]
        prefix = {k: v for k, v in last.items() if k.startswith("prefix_")}
        best = max(prefix, key=prefix.get)
        change = next(r["step"] for r in mine if r[best] >= 0.5 * prefix[best])
        out[f"{layers}_layer"] = {"loss_second_half": last["loss_second_half"], "icl_score": last["icl_score"],
                                  "best_prefix_head": best.removeprefix("prefix_"), "best_prefix_score": prefix[best],
                                  "phase_change_step": change}
    return out


def _figure(rows: list[dict], summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for layers, style in ((2, "-"), (1, "--")):
        mine = [r for r in rows if r["layers"] == layers]
        steps = [r["step"] for r in mine]
        label = f"{layers} layer{'s' if layers > 1 else ''}"
        axes[0].plot(steps, [r["loss_second_half"] for r in mine], style, label=label)
        axes[1].plot(steps, [r["icl_score"] for r in mine], style, label=label)
        for key in [k for k in mine[0] if k.startswith("prefix_")]:
            axes[2].plot(steps, [r[key] for r in mine], style, lw=1, label=f"{label}: {key.removeprefix('prefix_')}")
    change = summary["2_layer"]["phase_change_step"]
    for ax in axes:
        ax.axvline(change, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("step")
    axes[0].axhline(summary["chance_loss"], color="grey", lw=0.8)
    axes[0].set_ylabel("loss on the repeated half [nats]")
    axes[1].set_ylabel("ICL score (late - early loss) [nats]")
    axes[2].set_ylabel("prefix-matching score per head")
    axes[0].legend()
    axes[2].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
