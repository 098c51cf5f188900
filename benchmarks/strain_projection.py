"""Projecting a cloth onto given edge strains: ours (numba Gauss-Seidel sweeps, `sims.constraints.StrainLimiter`)
against scipy's sparse nonlinear least squares (`scipy.optimize.least_squares`, trust-region reflective with
the sparse Jacobian of the edge lengths), which a physicist would otherwise reach for.

The flag of the solver (`sims.solvers.flag`, 21 x 13 nodes, pinned along its pole) after 40 frames of wind;
every free node is moved by Gaussian noise of ``--noise`` m (a learned model's raw frame), and the cloth
is projected back onto the clean frame's strains, a set of lengths that one cloth meets exactly. For each
method: the time per projection, the mean |achieved - goal| strain, and the mean strain against the goal's
(the rollout statistic `physml sims evaluate` reports). Prints one line per method:

    METHOD: X ms, residual R, mean strain S (goal G), ratio scipy/ours

Usage: python benchmarks/strain_projection.py [--noise 0.003] [--sweeps 200 1000] [--repeats 3] [--scipy-repeats 1]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import least_squares
from timing import best_of  # benchmarks/timing.py

from datasets.meshes import NORMAL
from sims.constraints import StrainLimiter
from sims.mesh import edge_strain, mesh_edges, rest_lengths
from sims.solvers.flag import FlagConfig, flag_trajectory, make_flag


def scipy_projection(x: np.ndarray, edges: np.ndarray, lengths: np.ndarray, movable: np.ndarray) -> np.ndarray:
    """``x [N, 3]`` with its movable nodes moved so that every edge has its length in ``lengths [E]``, by
    sparse least squares on the length residuals, started from ``x``."""
    free = np.flatnonzero(movable)
    column = np.full(len(x), -1)
    column[free] = np.arange(len(free))
    rows = np.repeat(np.arange(len(edges)), 6)

    def positions(q: np.ndarray) -> np.ndarray:
        out = x.copy()
        out[free] = q.reshape(-1, 3)
        return out

    def residuals(q: np.ndarray) -> np.ndarray:
        p = positions(q)
        return np.linalg.norm(p[edges[:, 1]] - p[edges[:, 0]], axis=1) - lengths

    def jacobian(q: np.ndarray) -> sparse.csr_matrix:
        p = positions(q)
        delta = p[edges[:, 1]] - p[edges[:, 0]]
        unit = delta / np.linalg.norm(delta, axis=1, keepdims=True)
        values = np.concatenate([-unit, unit], axis=1).ravel()
        cols = np.concatenate([3 * column[edges[:, 0], None] + np.arange(3),
                               3 * column[edges[:, 1], None] + np.arange(3)], axis=1).ravel()
        keep = cols >= 0  # the pinned nodes are not unknowns
        cols = np.where(keep, cols, 0)
        return sparse.csr_matrix((values * keep, (rows, cols)), shape=(len(edges), 3 * len(free)))

    fit = least_squares(residuals, x[free].ravel(), jac=jacobian, method="trf", tr_solver="lsmr")
    return positions(fit.x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", type=float, default=0.003, help="m of Gaussian noise on the free nodes")
    parser.add_argument("--sweeps", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scipy-repeats", type=int, default=1, help="scipy takes seconds per projection")
    args = parser.parse_args()
    traj = flag_trajectory(make_flag(FlagConfig()), 41, seed=0)
    clean = traj.fields["world_pos"][40].astype(np.float64)
    edges = mesh_edges(traj.cells)
    rest = rest_lengths(traj.mesh_pos, edges)
    movable = traj.node_type == NORMAL
    goal = edge_strain(clean, edges, traj.mesh_pos)
    noisy = clean + args.noise * np.random.default_rng(0).standard_normal(clean.shape) * movable[:, None]
    print(f"flag: {len(clean)} nodes, {len(edges)} edges, goal mean strain {goal.mean():.3e}, noise {args.noise} m "
          f"(raw frame: residual {np.abs(edge_strain(noisy, edges, traj.mesh_pos) - goal).mean():.2e})")

    def report(name: str, seconds: float, out: np.ndarray) -> None:
        achieved = edge_strain(out, edges, traj.mesh_pos)
        print(f"{name}: {seconds * 1e3:.2f} ms, residual {np.abs(achieved - goal).mean():.2e}, mean strain "
              f"{achieved.mean():.3e} (goal {goal.mean():.3e})")

    ours = {}
    for sweeps in args.sweeps:
        limiter = StrainLimiter(edges, rest, movable, limit=1.0, sweeps=sweeps, tolerance=0.0)
        positions, strains = torch.as_tensor(noisy), torch.as_tensor(goal)
        ours[sweeps] = best_of(lambda: limiter(positions, strains), args.repeats)
        report(f"ours, {sweeps} Gauss-Seidel sweeps", ours[sweeps], limiter(positions, strains).numpy())
    lengths = rest * (1 + goal)
    seconds = best_of(lambda: scipy_projection(noisy, edges, lengths, movable), args.scipy_repeats)
    report("scipy least_squares (trf, sparse Jacobian)", seconds, scipy_projection(noisy, edges, lengths, movable))
    for sweeps, mine in ours.items():
        print(f"ratio scipy/ours ({sweeps} sweeps): {seconds / mine:.1f}")


if __name__ == "__main__":
    main()
