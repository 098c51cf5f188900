"""Triangle meshes of the mesh-based simulators: generation (structured grids, DistMesh) and edges.

Node types and mesh checks belong to the on-disk schema, in :mod:`datasets.meshes`.
"""
from __future__ import annotations

import numpy as np


def grid_mesh(width: float, height: float, nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``width x height`` rectangle of ``nx x ny`` nodes, each quad split into two triangles along
    alternating diagonals (no preferred direction). Returns ``mesh_pos [N, 2]`` and ``cells [C, 3]``."""
    x, y = np.meshgrid(np.linspace(0, width, nx), np.linspace(0, height, ny), indexing="ij")
    mesh_pos = np.column_stack([x.ravel(), y.ravel()])
    node = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = node[:-1, :-1].ravel(), node[1:, :-1].ravel(), node[1:, 1:].ravel(), node[:-1, 1:].ravel()
    flip = ((np.arange(nx - 1)[:, None] + np.arange(ny - 1)[None, :]) % 2).ravel().astype(bool)
    first = np.where(flip[:, None], np.column_stack([a, b, d]), np.column_stack([a, b, c]))
    second = np.where(flip[:, None], np.column_stack([b, c, d]), np.column_stack([a, c, d]))
    return mesh_pos, np.concatenate([first, second]).astype(np.int64)


def mesh_edges(cells: np.ndarray) -> np.ndarray:
    """Unique undirected edges ``[E, 2]`` (``i < j``) of the triangles ``cells [C, 3]``."""
    pairs = np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]])
    return np.unique(np.sort(pairs, axis=1), axis=0)


def edge_strain(positions: np.ndarray, edges: np.ndarray, mesh_pos: np.ndarray) -> np.ndarray:
    """``[..., E]`` strains ``|x_i - x_j| / L_ij - 1`` of ``edges [E, 2]`` in ``positions [..., N, D]``,
    rest lengths ``L`` from the rest (mesh-space) positions ``mesh_pos [N, 2]``."""
    i, j = edges.T
    return np.linalg.norm(positions[..., i, :] - positions[..., j, :], axis=-1) / rest_lengths(mesh_pos, edges) - 1


def rest_lengths(mesh_pos: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``[E]`` lengths of ``edges [E, 2]`` in the rest (mesh-space) positions ``mesh_pos [N, 2]``."""
    return np.linalg.norm(mesh_pos[edges[:, 0]] - mesh_pos[edges[:, 1]], axis=-1)


def two_way(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(senders, receivers)`` with every undirected edge in both directions."""
    return np.concatenate([edges[:, 0], edges[:, 1]]), np.concatenate([edges[:, 1], edges[:, 0]])


def interior_edge_opposites(cells: np.ndarray) -> np.ndarray:
    """``[B, 2]``: for every edge shared by two triangles, the two vertices opposite it (bending pairs)."""
    sides = np.concatenate([cells[:, [0, 1, 2]], cells[:, [1, 2, 0]], cells[:, [2, 0, 1]]])
    key = np.sort(sides[:, :2], axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, opposite = key[order], sides[order, 2]
    shared = np.nonzero((key[1:] == key[:-1]).all(1))[0]
    return np.column_stack([opposite[shared], opposite[shared + 1]])


def distmesh(distance, size, h_min: float, bbox: tuple[float, float, float, float], fixed: np.ndarray,
             iterations: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An unstructured triangle mesh of the region ``distance(p) < 0`` by Persson & Strang's DistMesh (2004):
    points on a hexagonal lattice kept with probability ``(h_min / size(p))^2``, then moved towards the force
    equilibrium of a truss whose bars want length ``size`` (Delaunay-retriangulated when points move far),
    points that leave the region projected back onto its boundary. ``fixed [F, 2]`` points never move.

    Args:
        distance: signed distance ``[P, 2] -> [P]``, negative inside. size: relative edge length ``[P, 2] -> [P]``.
    Returns:
        ``points [N, 2]``, ``cells [C, 3]`` (counter-clockwise).
    """
    from scipy.spatial import Delaunay

    x0, y0, x1, y1 = bbox
    xs = np.arange(x0, x1 + 1e-12, h_min)
    ys = np.arange(y0, y1 + 1e-12, h_min * np.sqrt(3) / 2)
    px, py = np.meshgrid(xs, ys)
    px[1::2] += h_min / 2
    p = np.column_stack([px.ravel(), py.ravel()])
    p = p[distance(p) < -1e-3 * h_min]
    r0 = 1 / size(p) ** 2
    p = p[np.random.default_rng(seed).random(len(p)) < r0 / r0.max()]
    fixed = np.asarray(fixed, dtype=float).reshape(-1, 2)
    p = np.vstack([fixed, p])
    n_fixed = len(fixed)
    eps, geps, tol = np.sqrt(np.finfo(float).eps) * h_min, 1e-3 * h_min, 0.1
    last = np.full_like(p, np.inf)
    bars = cells = None
    for _ in range(iterations):
        if np.abs(p - last).max() / h_min > tol:  # retriangulate
            last = p.copy()
            cells = Delaunay(p).simplices
            cells = cells[distance(p[cells].mean(1)) < -geps]
            bars = mesh_edges(cells)
        vec = p[bars[:, 0]] - p[bars[:, 1]]
        length = np.linalg.norm(vec, axis=1)
        want = size((p[bars[:, 0]] + p[bars[:, 1]]) / 2)
        want *= 1.2 * np.sqrt((length ** 2).sum() / (want ** 2).sum())
        force = np.maximum(want - length, 0) / length
        move = np.zeros_like(p)
        np.add.at(move, bars[:, 0], force[:, None] * vec)
        np.add.at(move, bars[:, 1], -force[:, None] * vec)
        move[:n_fixed] = 0
        p = p + 0.2 * move
        d = distance(p)
        out = d > 0
        if out.any():  # project back along the numerical gradient of the distance
            q = p[out]
            gx = (distance(q + [eps, 0]) - d[out]) / eps
            gy = (distance(q + [0, eps]) - d[out]) / eps
            p[out] -= (d[out] / np.maximum(gx ** 2 + gy ** 2, 1e-30))[:, None] * np.column_stack([gx, gy])
        if (0.2 * np.linalg.norm(move[d < -geps], axis=1)).max(initial=0) < 1e-3 * h_min:
            break
    cells = Delaunay(p).simplices
    cells = cells[distance(p[cells].mean(1)) < -geps]
    used = np.unique(cells)
    remap = np.full(len(p), -1)
    remap[used] = np.arange(len(used))
    return p[used], orient(p[used], remap[cells])


def orient(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """``cells`` reordered counter-clockwise."""
    a, b, c = (points[cells[:, i]] for i in range(3))
    clockwise = ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]) < 0
    cells = cells.copy()
    cells[clockwise] = cells[clockwise][:, [0, 2, 1]]
    return cells
