"""Radius-graph search: ours (numba cell lists) against scipy's cKDTree and scikit-learn's KDTree.

Uniform points in the unit box, radius chosen for ~20 neighbours per point in 2-D and ~30 in 3-D.
cKDTree.query_pairs returns each pair once, so it is symmetrised to the same directed edge list;
sklearn's query_radius (what DeepMind's GNS uses) returns per-point lists that are flattened.
Each method's edge set is checked equal to ours. Prints one line per size:

    neighbours: ours X s, reference Y s, ratio Y/X

Usage: python benchmarks/neighbours.py [--sizes 1e3 1e4 1e5 1e6] [--dims 2 3] [--no-sklearn]
"""
from __future__ import annotations

import argparse
import math

import numpy as np
from scipy.spatial import cKDTree

from gnn.neighbours import radius_graph
from physml.demo import best_of


def ckdtree_edges(x: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    pairs = cKDTree(x).query_pairs(r, output_type="ndarray")
    return np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])


def sklearn_edges(x: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import KDTree

    lists = KDTree(x).query_radius(x, r)
    receivers = np.repeat(np.arange(x.shape[0]), [len(a) for a in lists])
    senders = np.concatenate(lists)
    keep = senders != receivers
    return senders[keep], receivers[keep]


def edge_keys(senders: np.ndarray, receivers: np.ndarray, n: int) -> np.ndarray:
    return np.sort(receivers.astype(np.int64) * n + senders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e3, 1e4, 1e5, 1e6])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--no-sklearn", action="store_true", help="skip the (slow) scikit-learn reference")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    radius_graph(rng.random((5000, 3)), 0.1)  # compile both kernels before timing
    radius_graph(rng.random((10, 3)), 0.1)
    print(f"{'dim':>3} {'N':>8} {'edges/pt':>8} {'ours s':>9} {'cKDTree s':>10} {'ratio':>6} "
          f"{'sklearn s':>10} {'ratio':>6}")
    for dim in args.dims:
        for n in map(int, args.sizes):
            x = rng.random((n, dim))
            target = 20 if dim == 2 else 30
            r = math.sqrt(target / (math.pi * n)) if dim == 2 else (3 * target / (4 * math.pi * n)) ** (1 / 3)
            repeats = 5 if n <= 1e5 else 3
            t_ours, (s, rc) = best_of(repeats, lambda: radius_graph(x, r))
            t_ckd, (s2, rc2) = best_of(repeats, lambda: ckdtree_edges(x, r))
            ours = edge_keys(s, rc, n)
            assert np.array_equal(ours, edge_keys(s2, rc2, n)), "cKDTree found different edges"
            line = (f"{dim:>3} {n:>8} {len(s) / n:>8.1f} {t_ours:>9.4f} {t_ckd:>10.4f} "
                    f"{t_ckd / t_ours:>6.1f}")
            if not args.no_sklearn:
                t_skl, (s3, rc3) = best_of(1 if n >= 1e5 else 3, lambda: sklearn_edges(x, r))
                assert np.array_equal(ours, edge_keys(s3, rc3, n)), "sklearn found different edges"
                line += f" {t_skl:>10.4f} {t_skl / t_ours:>6.1f}"
            print(line, flush=True)
            print(f"neighbours: ours {t_ours:.4f} s, reference {t_ckd:.4f} s, ratio {t_ckd / t_ours:.2f} "
                  f"(cKDTree, {dim}-D, N={n})", flush=True)


if __name__ == "__main__":
    main()
