"""The GNS-size processor against the same model written with PyTorch Geometric, timed in one run.

Both models are encode-process-decode with 10 unshared interaction-network steps (latent 128, two hidden
layers, LayerNorm, residuals, sum aggregation), on radius graphs of N uniform 2-D points with about 20
neighbours each (GNS's node and edge inputs: 30 and 3 features). The PyG model is written the way its
documentation teaches (``MessagePassing`` with ``edge_updater`` for the edge MLP on ``[e, x_j, x_i]`` and
``propagate`` for the sum), loaded with our weights, and its output is asserted equal to ours before timing.
For each N and precision it prints forward and forward+backward times of both, their ratio, and the GFLOP/s
of our matrix products (counted by torch's FlopCounterMode) against the matmul peak of the same dtype:

    message_passing: <what> ours X s, reference Y s, ratio Y/X     (reference = PyG fp32)

bf16 rows run under autocast when ``--precision`` includes bf16; by default they run only where the
precision probe (``training.precision``) finds bf16 matrix products fast.

Usage: python benchmarks/message_passing.py [--sizes 1000 4000 16000] [--precision fp32 bf16] [--device cpu]
"""
from __future__ import annotations

import argparse
import contextlib
import math

import torch
from timing import best_of, count_flops, matmul_peak, synchronised  # benchmarks/timing.py

from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from gnn.mlp import MLP
from gnn.neighbours import radius_graph
from training.allocator import retain_freed_memory
from training.precision import autocast, resolve_precision

NODE_IN, EDGE_IN, NEIGHBOURS = 30, 3, 20


def particle_graph(n: int, device: torch.device, seed: int = 0) -> GraphBatch:
    """Uniform points in the unit square joined within the radius that gives ~20 neighbours each."""
    gen = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    senders, receivers = radius_graph(pos, math.sqrt(NEIGHBOURS / (math.pi * n)))
    senders, receivers = senders.long(), receivers.long()
    return GraphBatch(nodes=torch.randn(n, NODE_IN, generator=gen), senders=senders, receivers=receivers,
                      edges=torch.randn(len(senders), EDGE_IN, generator=gen), n_node=torch.tensor([n]),
                      n_edge=torch.tensor([len(senders)])).to(device)


def pyg_processor(ours: EncodeProcessDecode):
    """The same network in PyTorch Geometric, sharing ``ours``' MLPs (so outputs must agree)."""
    from torch_geometric.nn import MessagePassing

    class Interaction(MessagePassing):
        def __init__(self, edge_mlp: MLP, node_mlp: MLP) -> None:
            super().__init__(aggr="sum")
            self.edge_mlp, self.node_mlp = edge_mlp, node_mlp

        def edge_update(self, e: torch.Tensor, x_j: torch.Tensor, x_i: torch.Tensor) -> torch.Tensor:
            return self.edge_mlp(torch.cat([e, x_j, x_i], dim=-1))

        def message(self, m: torch.Tensor) -> torch.Tensor:
            return m

        def forward(self, x, edge_index, e):
            m = self.edge_updater(edge_index, x=x, e=e)
            aggregated = self.propagate(edge_index, m=m, size=(len(x), len(x)))
            return x + self.node_mlp(torch.cat([x, aggregated], dim=-1)), e + m

    class Processor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.node_encoder, self.edge_encoder = ours.node_encoder, ours.edge_encoders[0]
            self.blocks = torch.nn.ModuleList(Interaction(b.edges[0].phi, b.node) for b in ours.processor)
            self.decoder = ours.node_decoder

        def forward(self, x, edge_index, e):
            x, e = self.node_encoder(x), self.edge_encoder(e)
            for block in self.blocks:
                x, e = block(x, edge_index, e)
            return self.decoder(x)

    return Processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=None,
                        help="default: fp32, and bf16 where the probe finds it fast")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--allocator", choices=["retain", "default"], default="retain",
                        help="retain: training.allocator.retain_freed_memory() as the Trainer does (both models)")
    args = parser.parse_args()
    if args.allocator == "retain":
        retain_freed_memory()
    device = torch.device(args.device)
    precisions = args.precision or sorted({"fp32", resolve_precision("auto", device)}, key=["fp32", "bf16"].index)
    peaks = {p: matmul_peak(device, torch.float32 if p == "fp32" else torch.bfloat16) for p in ("fp32", "bf16")}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, {args.allocator} allocator; "
          f"matmul peak fp32 {peaks['fp32']:.0f}, bf16 {peaks['bf16']:.0f} GFLOP/s; rows: {', '.join(precisions)}")
    print(f"{'N':>6} {'E':>7} {'prec':>5} {'PyG fwd':>8} {'ours fwd':>9} {'x':>5} {'PyG f+b':>8} {'ours f+b':>9} "
          f"{'x':>5} {'f+b/fwd':>8} {'GFLOP/s':>8} {'of peak':>8}")
    torch.manual_seed(0)
    ours = EncodeProcessDecode(EncodeProcessDecodeConfig(node_in=NODE_IN, edge_in=EDGE_IN, node_out=2)).to(device)
    theirs = pyg_processor(ours)
    for n in args.sizes:
        graph = particle_graph(n, device)
        edge_index = torch.stack([graph.senders, graph.receivers])
        with torch.no_grad():
            expected = ours(graph).nodes
            torch.testing.assert_close(theirs(graph.nodes, edge_index, graph.edges), expected, rtol=1e-4, atol=1e-4)

        def forward(model_call, precision):
            def run():
                with torch.no_grad(), autocast(precision, device):
                    return model_call()
            return synchronised(run, device)

        def train_step(model_call, precision):
            def run():
                ours.zero_grad(set_to_none=True)
                with autocast(precision, device):
                    out = model_call()
                out.float().square().mean().backward()
            return synchronised(run, device)

        def call_ours():
            return ours(graph).nodes

        def call_pyg():
            return theirs(graph.nodes, edge_index, graph.edges)

        pyg_fwd = best_of(forward(call_pyg, "fp32"), args.repeats)
        pyg_step = best_of(train_step(call_pyg, "fp32"), args.repeats)
        for precision in precisions:
            fwd = best_of(forward(call_ours, precision), args.repeats)
            step = best_of(train_step(call_ours, precision), args.repeats)
            rate = count_flops(train_step(call_ours, precision)) / step / 1e9
            print(f"{n:>6} {graph.num_edges:>7} {precision:>5} {pyg_fwd:>8.3f} {fwd:>9.3f} {pyg_fwd / fwd:>5.2f} "
                  f"{pyg_step:>8.3f} {step:>9.3f} {pyg_step / step:>5.2f} {step / fwd:>8.2f} {rate:>8.1f} "
                  f"{rate / peaks[precision]:>8.0%}", flush=True)
            print(f"message_passing: train step N={n} {precision} ours {step:.4f} s, reference {pyg_step:.4f} s, "
                  f"ratio {pyg_step / step:.2f}", flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
