"""Learned simulator against its solver: seconds per frame of the GNS and of SPH on the same scene.

For N ~ 1k, 4k and 16k water particles (a dam-break column, 2-D), times one output frame of the SPH solver
(its CFL-limited sub-steps) and one GNS step (graph build + encode-process-decode + integration) with the
reference configuration, and the GFLOP/s the model's matrix products reach against the machine's float32 matmul peak
(torch.matmul on 2048^2 matrices). Prints one line per size:

    gns_step: ours X s, reference Y s, ratio Y/X      (ours = GNS frame, reference = solver frame)

Usage: python benchmarks/gns_step.py [--sizes 1000 4000 16000] [--latent 64] [--steps 5]
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from timing import count_flops, matmul_peak  # benchmarks/timing.py

from physml.demo import best_of
from sims.gns import GNS, GNSConfig
from sims.solvers.sph import SPH, SPHConfig, lattice


def scene(n: int) -> tuple[SPHConfig, SPH, dict]:
    """A square column of about n particles in a tank twice its width, and matching GNS metadata."""
    dx = 0.01
    side = math.sqrt(n) * dx
    cfg = SPHConfig(dim=2, box=(2 * side, 1.5 * side), spacing=dx)
    sph = SPH(cfg, lattice(np.zeros(2), np.array([side, side]), dx))
    metadata = {"dim": 2, "bounds": [[0.0, 2 * side], [0.0, 1.5 * side]], "default_connectivity_radius": 2.5 * dx,
                "vel_mean": [0.0, 0.0], "vel_std": [1e-3, 1e-3], "acc_mean": [0.0, 0.0], "acc_std": [1e-4, 1e-4]}
    return cfg, sph, metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--latent", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="message-passing steps")
    parser.add_argument("--frame-dt", type=float, default=0.01)
    parser.add_argument("--device", default="cpu", help="where the GNS runs (the solver always runs on the CPU)")
    args = parser.parse_args()
    dev = torch.device(args.device)
    peak = matmul_peak(torch.device(args.device))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32 matmul peak on {args.device} "
          f"{peak:.1f} GFLOP/s")
    print(f"{'N':>7} {'solver s/frame':>15} {'GNS s/frame':>12} {'speed-up':>9} {'matmul GFLOP/s':>15} {'of peak':>8}")
    for n in args.sizes:
        cfg, sph, metadata = scene(n)
        sph.advance(args.frame_dt)  # compile and leave the initial state
        frames = [sph.fluid_positions.copy()]
        solver_s, _ = best_of(3, lambda: (sph.advance(args.frame_dt), frames.append(sph.fluid_positions.copy())))
        while len(frames) < 6:
            sph.advance(args.frame_dt)
            frames.append(sph.fluid_positions.copy())
        torch.manual_seed(0)
        model = GNS(GNSConfig(latent=args.latent, n_steps=args.steps), metadata).eval().to(dev)
        window = torch.from_numpy(np.stack(frames[-6:], axis=1).astype(np.float32)).to(dev)
        types = torch.full((window.shape[0],), 5, dtype=torch.long, device=dev)
        batch = torch.zeros(window.shape[0], dtype=torch.long, device=dev)

        @torch.no_grad()
        def gns_frame():
            out = model.next_position(window, model(window, types, batch))
            if dev.type == "cuda":
                torch.cuda.synchronize()
            return out

        gns_s, _ = best_of(5, gns_frame)
        flops = count_flops(gns_frame)
        net_s, _ = best_of(5, lambda: model.net(model.graph(window, types, batch)))
        graph_s, graph = best_of(5, lambda: model.graph(window, types, batch))
        rate = flops / max(net_s - graph_s, 1e-9) / 1e9
        print(f"{window.shape[0]:>7} {solver_s:>15.4f} {gns_s:>12.4f} {solver_s / gns_s:>9.1f} {rate:>15.1f} "
              f"{rate / peak:>8.0%}   ({graph.num_edges / window.shape[0]:.1f} edges/particle)", flush=True)
        print(f"gns_step: ours {gns_s:.4f} s, reference {solver_s:.4f} s, ratio {solver_s / gns_s:.2f} "
              f"(GNS latent {args.latent} x {args.steps} steps vs SPH frame, N={window.shape[0]})")


if __name__ == "__main__":
    main()
