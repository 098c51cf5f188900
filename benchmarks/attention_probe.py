"""Cost of the attention probe (backbones/interpret.py) in a tagger's inference.

A ParT-small tagger (untrained: timing only) scores sample jets three ways:
    off:        as shipped, outside any probe (CrossAttention checks ``self.probe is None``, then runs the fused
                scaled_dot_product_attention)
    reference:  CrossAttention.update replaced by the spelling before the probe existed (no check)
    on:         inside ``attention_probe`` (explicit softmax attention, every map recorded)
Prints:

    attention_probe: off X ms, reference Y ms (off/reference), on Z ms (on/off)

Usage: python benchmarks/attention_probe.py [--jets 1024] [--batch-size 256] [--repeats 5]
"""
from __future__ import annotations

import argparse

import torch
from timing import best_of  # benchmarks/timing.py
from torch.nn import functional as F

from backbones.attention import CrossAttention
from backbones.interpret import attention_probe
from hep.jets import SAMPLE_DIR
from hep.jets.inputs import load_jets
from hep.jets.models import ParticleTransformer
from hep.jets.train import jet_files


def reference_update(self: CrossAttention, x: torch.Tensor, context: torch.Tensor | None = None,
                     mask: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """CrossAttention.update as it was before the probe: always the fused kernel."""
    h = self.norm(x)
    k, v = self.kv(h if context is None else context).chunk(2, dim=-1)

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    attn_mask = None if mask is None else mask[:, None, None, :]
    if bias is not None:
        attn_mask = bias if attn_mask is None else bias.masked_fill(~attn_mask, float("-inf"))
    y = F.scaled_dot_product_attention(split(self.q(h)), split(k), split(v), attn_mask=attn_mask)
    return self.out(y.transpose(1, 2).flatten(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jets", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ParticleTransformer().eval()
    jets = load_jets(jet_files(SAMPLE_DIR), limit=args.jets)
    batches = [jets[i: i + args.batch_size].trimmed() for i in range(0, len(jets), args.batch_size)]

    def score() -> list[torch.Tensor]:
        with torch.inference_mode():
            return [model(b) for b in batches]

    off = best_of(score, args.repeats)
    original = CrossAttention.update
    CrossAttention.update = reference_update
    try:
        reference = best_of(score, args.repeats)
    finally:
        CrossAttention.update = original
    with attention_probe(model):
        on = best_of(score, args.repeats)
    print(f"attention_probe: {len(jets)} jets, {torch.get_num_threads()} threads: off {off * 1e3:.1f} ms, reference "
          f"{reference * 1e3:.1f} ms ({off / reference:.3f}), on {on * 1e3:.1f} ms ({on / off:.2f}x)")


if __name__ == "__main__":
    main()
