"""Triangle meshes of the mesh-based simulators: node types, edges, and checks on the inputs.

Node types are those of MeshGraphNets (Pfaff et al. 2021), so datasets in their convention read unchanged.
"""
from __future__ import annotations

import numpy as np

NORMAL, OBSTACLE, AIRFOIL, HANDLE, INFLOW, OUTFLOW, WALL_BOUNDARY = 0, 1, 2, 3, 4, 5, 6
NODE_TYPES = 9  # width of the one-hot node type (MeshGraphNets' NodeType.SIZE)


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


def check_mesh(mesh_pos: np.ndarray, cells: np.ndarray, node_type: np.ndarray, where: str = "mesh") -> None:
    """Raise ``ValueError`` naming ``where`` for degenerate triangles, unreferenced nodes, out-of-range
    indices or node types, and shapes that disagree."""
    n = len(mesh_pos)
    if mesh_pos.ndim != 2 or mesh_pos.shape[1] != 2:
        raise ValueError(f"{where}: mesh_pos must be [N, 2], got shape {mesh_pos.shape}")
    if cells.ndim != 2 or cells.shape[1] != 3:
        raise ValueError(f"{where}: cells must be [C, 3], got shape {cells.shape}")
    if node_type.shape != (n,):
        raise ValueError(f"{where}: node_type must be [N={n}], got shape {node_type.shape}")
    if cells.size and (cells.min() < 0 or cells.max() >= n):
        raise ValueError(f"{where}: cells index nodes outside 0..{n - 1}")
    if node_type.size and (node_type.min() < 0 or node_type.max() >= NODE_TYPES):
        raise ValueError(f"{where}: node_type values must lie in 0..{NODE_TYPES - 1}, "
                         f"got {node_type.min()}..{node_type.max()}")
    unused = np.setdiff1d(np.arange(n), cells.ravel())
    if unused.size:
        raise ValueError(f"{where}: {unused.size} node(s) belong to no cell, e.g. node {unused[0]}")
    a, b, c = (mesh_pos[cells[:, i]] for i in range(3))
    area = 0.5 * np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    scale = max(float(np.ptp(mesh_pos, axis=0).max()), 1e-300)
    bad = np.nonzero(area <= 1e-12 * scale ** 2)[0]
    if bad.size:
        raise ValueError(f"{where}: {bad.size} degenerate (zero-area) triangle(s), e.g. cell {bad[0]}")
