"""Learned simulator against its solver: seconds per frame of the GNS and of SPH on the same scene.

For N ~ 1k, 4k and 16k water particles (a dam-break column, 2-D), times one output frame of the SPH solver
(its CFL-limited sub-steps) and one GNS frame on the rollout path (``sims.rollout.learned_rollout``: graph build,
encode-process-decode, integration) with the reference configuration in the chosen precision and compile mode,
the GFLOP/s the model's matrix products reach against the matmul peak of the same dtype, and how far that rollout
drifts from the fp32 eager one (in particle spacings). Prints one line per size:

    gns_step: ours X s, reference Y s, ratio Y/X      (ours = GNS frame, reference = solver frame)

Usage: python benchmarks/gns_step.py [--sizes 1000 4000 16000] [--latent 64] [--steps 5] [--precision auto]
       [--compile auto] [--device cpu]
"""
from __future__ import annotations

import argparse
import copy
import math

import numpy as np
import torch
from timing import count_flops, matmul_peak, synchronised  # benchmarks/timing.py

from physml.demo import best_of
from sims.gns import GNS, GNSConfig
from sims.rollout import learned_rollout
from sims.solvers.sph import SPH, SPHConfig, lattice
from training.allocator import retain_freed_memory
from training.inference import compile_network
from training.precision import autocast, resolve_precision


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
    parser.add_argument("--frames", type=int, default=5, help="rollout frames timed (after one warm-up frame)")
    parser.add_argument("--frame-dt", type=float, default=0.01)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--device", default="cpu", help="where the GNS runs (the solver always runs on the CPU)")
    args = parser.parse_args()
    retain_freed_memory()
    dev = torch.device(args.device)
    precision = resolve_precision(args.precision, dev)
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    peak = matmul_peak(dev, dtype)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {precision} matmul peak on {args.device} "
          f"{peak:.1f} GFLOP/s; compile {args.compile}")
    print(f"{'N':>7} {'solver s/frame':>15} {'GNS s/frame':>12} {'speed-up':>9} {'matmul GFLOP/s':>15} {'of peak':>8} "
          f"{'max |x - x_fp32| / dx':>22}")
    for n in args.sizes:
        cfg, sph, metadata = scene(n)
        sph.advance(args.frame_dt)  # compile and leave the initial state
        frames = [sph.fluid_positions.copy()]
        solver_s, _ = best_of(3, lambda: (sph.advance(args.frame_dt), frames.append(sph.fluid_positions.copy())))
        while len(frames) < 7 + args.frames:
            sph.advance(args.frame_dt)
            frames.append(sph.fluid_positions.copy())
        positions, types = np.stack(frames), np.full(len(frames[0]), 5)
        torch.manual_seed(0)
        model = GNS(GNSConfig(latent=args.latent, n_steps=args.steps), metadata).eval().to(dev)
        reference = copy.deepcopy(model)  # fp32, eager
        compile_network(model.net, args.compile, dev)
        learned_rollout(model, positions[:7], types, device=args.device, precision=precision)  # warm-up (compiles)
        rollout = learned_rollout(model, positions[1:], types, device=args.device, precision=precision)
        exact = learned_rollout(reference, positions[1:], types, device=args.device, precision="fp32")
        drift = np.abs(rollout.predicted - exact.predicted).max() / cfg.spacing
        gns_s = rollout.seconds_per_frame
        window = torch.from_numpy(positions[-6:].transpose(1, 0, 2).astype(np.float32)).to(dev)
        tensors = (window, torch.from_numpy(types).to(dev), torch.zeros(len(types), dtype=torch.long, device=dev))

        def network() -> object:
            with torch.no_grad(), autocast(precision, dev):
                return model.net(model.graph(*tensors))

        def graph() -> object:
            with torch.no_grad():
                return model.graph(*tensors)

        flops = count_flops(network)
        net_s, _ = best_of(5, synchronised(network, dev))
        graph_s, built = best_of(5, graph)
        rate = flops / max(net_s - graph_s, 1e-9) / 1e9
        print(f"{len(types):>7} {solver_s:>15.4f} {gns_s:>12.4f} {solver_s / gns_s:>9.1f} {rate:>15.1f} "
              f"{rate / peak:>8.0%} {drift:>22.2g}   ({built.num_edges / len(types):.1f} edges/particle)", flush=True)
        print(f"gns_step: ours {gns_s:.4f} s, reference {solver_s:.4f} s, ratio {solver_s / gns_s:.2f} "
              f"(GNS latent {args.latent} x {args.steps} steps, {precision}, compile {args.compile}, vs SPH frame, "
              f"N={len(types)})")


if __name__ == "__main__":
    main()
