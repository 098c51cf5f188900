"""Routed feed-forward layer (backbones/routing.py) against a dense MLP and a per-expert loop.

For T tokens of width D, times forward + backward of
    ours:   RoutedFeedForward (Switch top-1, E experts, one padded bmm over [E, capacity, D])
    dense:  the dense FeedForward with the same active parameters per token (the cost floor)
    loop:   the common simple spelling: the same routing, then a Python loop over the experts, each gathering
            its tokens and running its MLP (no capacity: every token is served)
The loop's output is checked equal to ours with capacity unlimited. Prints, per size:

    routing: ours X ms, dense Y ms (ours/dense), loop Z ms (loop/ours)

Usage: python benchmarks/routing.py [--tokens 4096 32768] [--experts 8] [--device cpu|cuda] [--bf16]
"""
from __future__ import annotations

import argparse
import math
import time

import torch
from torch.nn import functional as F

from backbones.routing import RoutedFeedForward, RouterConfig
from backbones.transformer import FeedForward


def loop_forward(layer: RoutedFeedForward, x: torch.Tensor) -> torch.Tensor:
    """The same layer spelled as a loop over experts (top-1, no capacity)."""
    tokens = layer.norm(x)
    probs = F.linear(tokens.float(), layer.router.weight.float()).softmax(-1)
    gate, expert = probs.max(-1)
    out = torch.zeros_like(tokens)
    for e in range(layer.cfg.experts):
        idx = torch.where(expert == e)[0]
        h = F.gelu(tokens[idx] @ layer.w1[e] + layer.b1[e]) @ layer.w2[e] + layer.b2[e]
        out = out.index_add(0, idx, gate[idx, None].to(h.dtype) * h)
    return x + out


def timed(fn, repeats: int, device: str) -> float:
    best = math.inf
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn().float().sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, nargs="+", default=[4096, 32768])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    args = parser.parse_args()
    torch.manual_seed(0)
    d, device = args.dim, args.device
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}, D = {d}, MLP {4 * d}, {args.experts} experts")
    routed = RoutedFeedForward(d, 4 * d, RouterConfig(experts=args.experts)).to(device)
    unlimited = RoutedFeedForward(d, 4 * d, RouterConfig(experts=args.experts, capacity_factor=0)).to(device)
    unlimited.load_state_dict(routed.state_dict())
    dense = FeedForward(d, 4 * d).to(device)
    for t in args.tokens:
        x = torch.randn(1, t, d, device=device, requires_grad=True)
        with torch.no_grad():
            assert torch.allclose(loop_forward(unlimited, x[0]), unlimited(x)[0], atol=1e-4)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=args.bf16):
            ours = timed(lambda: routed(x), args.repeats, device)
            floor = timed(lambda: dense(x), args.repeats, device)
            loop = timed(lambda: loop_forward(routed, x[0]), args.repeats, device)
        print(f"T = {t:>6}: ours {1e3 * ours:8.2f} ms, dense {1e3 * floor:8.2f} ms (ours/dense {ours / floor:.2f}), "
              f"loop {1e3 * loop:8.2f} ms (loop/ours {loop / ours:.2f}); dropped {float(routed.dropped):.3f}")


if __name__ == "__main__":
    main()
