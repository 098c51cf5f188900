"""Physics of the SPH solver: mass, hydrostatics, Martin & Moyce's dam break, energy."""
import math

import numpy as np
import pytest

from sims.solvers.sph import SPH, SPHConfig, lattice

# Martin & Moyce (1952), column of width a = 2.25 in and height 2a: surge front z/a at T = t sqrt(2 g / a)
MARTIN_MOYCE = [(0.832, 1.217), (1.219, 1.474), (1.997, 2.292), (2.547, 2.995)]


@pytest.fixture(scope="module")
def dam_break():
    a, dx = 0.1, 0.005
    cfg = SPHConfig(dim=2, box=(0.6, 0.3), spacing=dx)
    sph = SPH(cfg, lattice(np.zeros(2), np.array([a, 2 * a]), dx))
    scale = math.sqrt(2 * cfg.gravity / a)
    mass0, n0 = sph.mass * sph.n_fluid, sph.n_fluid
    fronts, energies = [], [sph.energy()]
    for t_star, _ in MARTIN_MOYCE:
        while sph.time < t_star / scale - 1e-9:
            sph.advance(min(0.01, t_star / scale - sph.time))
            energies.append(sph.energy())
        fronts.append((sph.fluid_positions[:, 0].max() + dx / 2) / a)
    return sph, fronts, energies, mass0, n0


def test_dam_break_front_follows_martin_and_moyce(dam_break):
    _, fronts, _, _, _ = dam_break
    for (t_star, expected), got in zip(MARTIN_MOYCE, fronts):
        assert abs(got - expected) / expected < 0.10, (t_star, got, expected)


def test_energy_never_grows(dam_break):
    _, _, energies, _, _ = dam_break
    e = np.array(energies)
    assert np.all(np.diff(e) <= 1e-4 * abs(e[0]))
    assert e[-1] < e[0]


def test_mass_is_conserved_and_no_particle_escapes(dam_break):
    sph, _, _, mass0, n0 = dam_break
    assert sph.n_fluid == n0 and sph.mass * sph.n_fluid == mass0
    x = sph.fluid_positions
    assert np.all(x >= 0) and np.all(x <= np.array(sph.cfg.box))


def test_column_at_rest_reaches_hydrostatic_pressure():
    height, dx = 0.2, 0.01
    cfg = SPHConfig(dim=2, box=(0.2, 0.3), spacing=dx, alpha=0.5)
    sph = SPH(cfg, lattice(np.zeros(2), np.array([0.2, height]), dx))
    sph.advance(1.0)
    pressures, heights = [], []
    for _ in range(30):  # average out the acoustic oscillation
        sph.advance(0.01)
        pressures.append(sph.p[: sph.n_fluid].copy())
        heights.append(sph.fluid_positions[:, 1].copy())
    p, y = np.mean(pressures, 0), np.mean(heights, 0)
    depth = height - y  # the column's weight per unit width is rho0 g height
    deep = depth > 2 * cfg.h
    slope = np.polyfit(depth[deep], p[deep], 1)[0]
    assert abs(slope / (cfg.rho0 * cfg.gravity) - 1) < 0.05
    expected = cfg.rho0 * cfg.gravity * depth[deep]
    assert np.median(np.abs(p[deep] - expected) / expected) < 0.05


def test_three_dimensional_drop_keeps_energy_and_particles():
    dx = 0.02
    cfg = SPHConfig(dim=3, box=(0.2, 0.3, 0.2), spacing=dx)
    sph = SPH(cfg, lattice(np.array([0.04, 0.1, 0.04]), np.array([0.16, 0.2, 0.16]), dx))
    e = [sph.energy()]
    for _ in range(10):
        sph.advance(0.01)
        e.append(sph.energy())
    assert np.all(np.diff(e) <= 1e-4 * abs(e[0]))
    assert np.all(sph.fluid_positions >= 0) and np.all(sph.fluid_positions <= 0.3)
    assert sph.fluid_positions[:, 1].min() < 0.1  # it fell


def test_particles_outside_the_tank_are_rejected():
    with pytest.raises(ValueError, match="inside the box"):
        SPH(SPHConfig(), np.array([[0.5, 1.5]]))


def test_waterdrop_splits_hold_the_requested_held_out_trajectories(tmp_path):
    from datasets.trajectories import TrajectoryReader
    from sims.data import generate_waterdrop

    generate_waterdrop(tmp_path, seed=2, trajectories=1, frames=20, spacing=0.05, held_out=2, progress=False)
    sizes = {}
    for split in ("train", "valid", "test"):
        with TrajectoryReader(tmp_path / f"{split}.h5") as reader:
            sizes[split] = len(reader)
    assert sizes == {"train": 1, "valid": 2, "test": 2}
