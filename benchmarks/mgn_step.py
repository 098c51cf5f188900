"""MeshGraphNet step cost: the edge MLP's first layer as a sum of three linear maps (PhysicsNeMo's "concat
trick") against materialising the ``[E, 3F]`` concatenation, both on the same weights with equal outputs
asserted, for one edge block (forward, forward+backward) and for whole training steps (``gnn.blocks.EdgeBlock``
uses the trick by default); then a full training step and a rollout step of the flow and cloth
models against our solvers' wall-clock per frame on the same meshes, two mesh sizes each.

    mgn: <what> ours X ms, reference Y ms, ratio Y/X

Usage: python benchmarks/mgn_step.py [--latent 128] [--repeats 10] [--precision auto] [--compile auto]
"""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

import torch
from timing import best_of  # benchmarks/timing.py

from gnn.blocks import EdgeBlock
from gnn.graph import GraphBatch
from gnn.mlp import MLP
from sims.mesh_samples import collate, frame_state
from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig, training_loss
from sims.solvers.cylinder_flow import Channel, CylinderFlow, channel_mesh, simulate_cylinder_flow, substeps_per_frame
from sims.solvers.flag import FlagConfig, flag_trajectory, make_flag, simulate_flag
from training.allocator import retain_freed_memory
from training.inference import compile_network
from training.precision import autocast, resolve_precision


@contextlib.contextmanager
def edge_first_layer(trick: bool) -> Iterator[None]:
    """Force every EdgeBlock of a model onto one first-layer path."""
    forward = EdgeBlock.forward
    EdgeBlock.forward = lambda self, graph, trick_=None: forward(self, graph, trick=trick)
    try:
        yield
    finally:
        EdgeBlock.forward = forward


def concat_trick(latent: int, nodes: int, repeats: int) -> None:
    g = torch.Generator().manual_seed(0)
    edges = 6 * nodes  # a triangle mesh has about 3 N undirected edges
    graph = GraphBatch(nodes=torch.randn(nodes, latent, generator=g),
                       senders=torch.randint(0, nodes, (edges,), generator=g),
                       receivers=torch.randint(0, nodes, (edges,), generator=g),
                       n_node=torch.tensor([nodes]), n_edge=torch.tensor([edges]),
                       edges=torch.randn(edges, latent, generator=g))
    block = EdgeBlock(MLP(3 * latent, (latent, latent), latent, layer_norm=True))
    assert torch.allclose(block(graph, trick=True).edges, block(graph, trick=False).edges, atol=1e-4)
    for mode in ("forward", "forward+backward"):
        def run(trick: bool) -> None:
            out = block(graph, trick=trick).edges
            if mode != "forward":
                out.sum().backward()

        with torch.set_grad_enabled(mode != "forward"):
            a, b = best_of(lambda: run(True), repeats), best_of(lambda: run(False), repeats)
        print(f"mgn: edge block {mode}, {edges} edges, latent {latent}: ours (sum of maps) {a * 1e3:.2f} ms, "
              f"concatenated {b * 1e3:.2f} ms, ratio {b / a:.2f}", flush=True)


def model_against_solver(latent: int, steps: int, repeats: int, precision: str, compile_mode: str) -> None:
    """A training step and one rollout frame of each model against its solver's frame, on two mesh sizes each."""
    meshes = [("flow", h, simulate_cylinder_flow(Channel(length=1.6, h_cylinder=h[0], h_far=h[1]), 3, warmup=0.0))
              for h in ((0.015, 0.05), (0.006, 0.02))]
    meshes += [("cloth", n, flag_trajectory(make_flag(FlagConfig(nx=n[0], ny=n[1])), 3)) for n in ((21, 13), (61, 37))]
    for kind, size, traj in meshes:
        torch.manual_seed(0)
        model = MeshGraphNet(MeshGraphNetConfig(kind=kind, latent=latent, n_steps=steps))
        state = frame_state(traj, 1, kind)
        batch = collate([state, state])
        optimizer = torch.optim.Adam(model.parameters(), 1e-4)

        def train_step() -> None:
            with autocast(precision, "cpu"):
                loss, _ = training_loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        model.train()
        train = best_of(train_step, repeats)
        with edge_first_layer(trick=False):
            train_concat = best_of(train_step, repeats)
        print(f"mgn: {kind} training step, concat trick ours {train * 1e3:.1f} ms, concatenated "
              f"{train_concat * 1e3:.1f} ms, ratio {train_concat / train:.2f}", flush=True)
        model.eval()
        compile_network(model.net, compile_mode, "cpu")

        def frame() -> torch.Tensor:
            with autocast(precision, "cpu"):
                return model.advance(state)

        infer = best_of(frame, repeats)
        if kind == "flow":
            channel = Channel(length=1.6, h_cylinder=size[0], h_far=size[1])
            mesh_pos, cells, _ = channel_mesh(channel)
            substeps = substeps_per_frame(channel, 0.01)
            solver = CylinderFlow(channel, mesh_pos, cells, 0.01 / substeps)
            per_frame = best_of(lambda: [solver.step() for _ in range(substeps)], max(2, repeats // 3))
        else:
            f = make_flag(FlagConfig(nx=size[0], ny=size[1]))
            simulate_flag(f, 2)
            per_frame = best_of(lambda: simulate_flag(f, 11), max(2, repeats // 3)) / 10
        print(f"mgn: {kind} ({len(traj.mesh_pos)} nodes, latent {latent}, {steps} steps, {precision}, compile "
              f"{compile_mode}): training step (batch 2) {train * 1e3:.1f} ms; one rollout frame ours "
              f"{infer * 1e3:.1f} ms, solver {per_frame * 1e3:.1f} ms, ratio {per_frame / infer:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent", type=int, default=128)
    parser.add_argument("--message-passing-steps", type=int, default=15)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--skip-trick", action="store_true", help="only the models against their solvers")
    args = parser.parse_args()
    retain_freed_memory()
    if not args.skip_trick:
        for nodes in args.nodes:
            concat_trick(args.latent, nodes, args.repeats)
    model_against_solver(args.latent, args.message_passing_steps, args.repeats,
                         resolve_precision(args.precision, "cpu"), args.compile)


if __name__ == "__main__":
    main()
