"""Flag solver: energy conservation without wind and damping, pinned pole, stable flapping in wind."""
import numpy as np
import pytest

from datasets.meshes import HANDLE, check_mesh
from sims.mesh import interior_edge_opposites, mesh_edges
from sims.solvers.flag import FlagConfig, energy, make_flag, simulate_flag


def test_flag_mesh_springs_and_masses():
    flag = make_flag(FlagConfig(nx=5, ny=4))
    check_mesh(flag.mesh_pos, flag.cells, flag.node_type)
    assert len(flag.cells) == 2 * 4 * 3
    edges = mesh_edges(flag.cells)
    assert len(edges) == 4 * 4 + 5 * 3 + 4 * 3  # horizontal, vertical, one diagonal per quad
    assert len(interior_edge_opposites(flag.cells)) == len(edges) - 2 * (4 + 3)  # every edge but the boundary
    assert np.isclose(flag.mass.sum(), 0.15 * 1.0 * 0.6)
    assert (flag.node_type == HANDLE).sum() == 4 and (flag.mesh_pos[flag.node_type == HANDLE, 0] == 0).all()


def test_energy_is_conserved_without_wind_and_damping():
    # the flag starts horizontal (mesh in the x-z plane) and swings down about its pole
    flag = make_flag(FlagConfig(nx=9, ny=6, wind=0.0, gust=0.0, damping=0.0, air_density=0.0))
    start = np.column_stack([flag.mesh_pos[:, 0], np.zeros(len(flag.mesh_pos)), flag.mesh_pos[:, 1]])
    x, v = simulate_flag(flag, 60, world_pos=start)
    e = np.array([energy(flag, x[t], v[t]) for t in range(len(x))])
    kinetic = np.array([0.5 * (flag.mass * (v[t] ** 2).sum(1)).sum() for t in range(len(x))])
    assert kinetic.max() > 0.1 * flag.mass.sum() * 9.81 * 0.5  # a real swing: a fair part of the drop
    assert np.abs(e - e[0]).max() < 1e-3 * kinetic.max()


def test_pinned_pole_never_moves_and_wind_makes_a_stable_flap():
    flag = make_flag(FlagConfig(nx=11, ny=7))
    x, _ = simulate_flag(flag, 150, seed=2)
    pole = flag.node_type == HANDLE
    assert (x[:, pole] == x[0, pole]).all()
    length = np.linalg.norm(x[:, flag.springs[:, 1]] - x[:, flag.springs[:, 0]], axis=-1)
    stretch = length[:, :len(mesh_edges(flag.cells))] / flag.rest[:len(mesh_edges(flag.cells))]
    assert np.isfinite(x).all() and np.abs(stretch - 1).max() < 0.1  # cloth, not rubber; no blow-up
    assert np.ptp(x[50:, ~pole, 2]) > 0.05  # it flaps out of its plane
    assert x[-1, ~pole, 0].mean() > 0.3  # and streams downwind of the pole


def test_gusts_are_seeded():
    flag = make_flag(FlagConfig(nx=5, ny=4))
    a, b, c = (simulate_flag(flag, 20, seed=s)[0] for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.allclose(a, c)


@pytest.mark.parametrize("bad, message", [
    (lambda p, c, t: (p, c[:, :2], t), "cells must be"),
    (lambda p, c, t: (p, c, t[:-1]), "node_type must be"),
    (lambda p, c, t: (p, c, t + 20), "node_type values"),
    (lambda p, c, t: (np.vstack([p, [[5.0, 5.0]]]), c, np.append(t, 0)), "belong to no cell"),
    (lambda p, c, t: (p, np.vstack([c, [[0, 1, 1]]]), t), "degenerate"),
])
def test_bad_meshes_are_named(bad, message):
    flag = make_flag(FlagConfig(nx=4, ny=3))
    with pytest.raises(ValueError, match=f"flag.h5: .*{message}"):
        check_mesh(*bad(flag.mesh_pos, flag.cells, flag.node_type), where="flag.h5")
