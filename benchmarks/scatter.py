"""Scatter aggregation: our choices (gnn/scatter.py) against the other ways to spell them.

For E edges with F = 64 features aggregated into E / 16 nodes, times forward and forward+backward of
    sum:  ours (index_add_)       vs  scatter_add_, scatter_reduce("sum"), torch_scatter.scatter_sum
    mean: ours (index_add_/count) vs  scatter_reduce("mean"), torch_scatter.scatter_mean
    max:  ours (scatter_reduce amax forward, own backward) vs scatter_reduce("amax"), torch_scatter.scatter_max
torch_scatter is optional (the `pyg` extra does not build it); it is skipped when absent.
Every method's forward output is checked equal to ours. Prints, per reduction and size:

    scatter: ours X s, reference Y s, ratio Y/X

Usage: python benchmarks/scatter.py [--sizes 1e5 1e6] [--repeats 5]
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from gnn.optional import optional_module
from gnn.scatter import scatter_max, scatter_mean, scatter_sum


def timed(fn, repeats: int, backward: bool) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if backward:
            out.sum().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def methods(n: int):
    ts = optional_module("torch_scatter")

    def expand(index, src):
        return index[:, None].expand_as(src)

    table = {
        "sum": {
            "ours (index_add_)": lambda s, i: scatter_sum(s, i, n),
            "scatter_add_": lambda s, i: s.new_zeros(n, s.shape[1]).scatter_add_(0, expand(i, s), s),
            "scatter_reduce sum": lambda s, i: s.new_zeros(n, s.shape[1]).scatter_reduce(
                0, expand(i, s), s, "sum", include_self=False),
        },
        "mean": {
            "ours (index_add_/count)": lambda s, i: scatter_mean(s, i, n),
            "scatter_reduce mean": lambda s, i: s.new_zeros(n, s.shape[1]).scatter_reduce(
                0, expand(i, s), s, "mean", include_self=False),
        },
        "max": {
            "ours (amax + own backward)": lambda s, i: scatter_max(s, i, n),
            "scatter_reduce amax": lambda s, i: s.new_zeros(n, s.shape[1]).scatter_reduce(
                0, expand(i, s), s, "amax", include_self=False),
        },
    }
    if ts is not None:
        table["sum"]["torch_scatter"] = lambda s, i: ts.scatter_sum(s, i, 0, dim_size=n)
        table["mean"]["torch_scatter"] = lambda s, i: ts.scatter_mean(s, i, 0, dim_size=n)
        table["max"]["torch_scatter"] = lambda s, i: ts.scatter_max(s, i, 0, dim_size=n)[0]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6])
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, torch_scatter "
          f"{'installed' if optional_module('torch_scatter') else 'not installed'}")
    print(f"{'reduce':<5} {'E':>8} {'method':<28} {'fwd ms':>8} {'fwd+bwd ms':>11}")
    g = torch.Generator().manual_seed(0)
    for e in map(int, args.sizes):
        n = e // 16
        index = torch.randint(0, n, (e,), generator=g)
        for reduce, table in methods(n).items():
            src = torch.randn(e, args.features, generator=g, requires_grad=True)
            reference = None
            results = {}
            for name, fn in table.items():
                out = fn(src, index)
                reference = out if reference is None else reference
                if not torch.allclose(out, reference, atol=1e-4):
                    raise AssertionError(f"{name} disagrees with ours for {reduce}")
                fwd = timed(lambda: fn(src.detach(), index), args.repeats, backward=False)
                both = timed(lambda: fn(src, index), args.repeats, backward=True)
                results[name] = (fwd, both)
                print(f"{reduce:<5} {e:>8} {name:<28} {fwd * 1e3:>8.2f} {both * 1e3:>11.2f}", flush=True)
            ours = results[next(iter(results))][1]
            for name, (_, both) in list(results.items())[1:]:
                print(f"scatter: ours {ours:.4f} s, reference {both:.4f} s, ratio {both / ours:.2f} "
                      f"({reduce}, fwd+bwd, vs {name}, E={e})")


if __name__ == "__main__":
    main()
