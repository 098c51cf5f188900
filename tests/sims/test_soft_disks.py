"""Physics of the soft-disk solver: energy and momentum conservation, forces against brute force."""
import numpy as np
import pytest

from datasets.trajectories import TrajectoryReader
from sims.data import generate_soft_disks
from sims.evaluate import solver_rollout
from sims.rollout import constant_velocity
from sims.solvers.soft_disks import SoftDisks, energy, forces, random_state, simulate


def brute_forces(system, x):
    f = np.zeros_like(x)
    for i in range(len(x)):
        for j in range(len(x)):
            d = x[i] - x[j]
            r = np.linalg.norm(d)
            if i != j and r < system.sigma:
                f[i] += system.stiffness * (system.sigma - r) * d / r
    radius = system.sigma / 2
    for a, length in enumerate(system.box):
        f[:, a] += system.stiffness * np.clip(radius - x[:, a], 0, None)
        f[:, a] -= system.stiffness * np.clip(x[:, a] + radius - length, 0, None)
    f[:, 1] -= system.mass * system.gravity
    return f


def test_forces_match_brute_force_in_a_compressed_packing():
    system = SoftDisks()
    x, _ = random_state(system, 80, np.random.default_rng(0))
    x = x * 0.8 - 0.005  # squeeze so that disks overlap each other and the walls
    assert np.allclose(forces(system, x), brute_forces(system, x))


def test_energy_is_conserved_without_damping():
    system = SoftDisks()
    x, v = random_state(system, 100, np.random.default_rng(1), speed=1.0)
    e0 = energy(system, x, v)
    xx, vv = x.copy(), v.copy()
    a = forces(system, xx)
    for _ in range(60 * system.substeps):  # velocity Verlet by hand, to keep the velocities
        vv += 0.5 * system.dt * a
        xx += system.dt * vv
        a = forces(system, xx)
        vv += 0.5 * system.dt * a
    assert np.allclose(xx, simulate(system, x, v, frames=61)[-1])
    assert abs(energy(system, xx, vv) - e0) < 1e-3 * e0


def test_pair_forces_conserve_momentum_exactly():
    system = SoftDisks(gravity=0.0, box=(10.0, 10.0))
    rng = np.random.default_rng(2)
    x = 5.0 + rng.random((60, 2)) * 0.3  # a dense cluster far from the walls
    total = forces(system, x).sum(axis=0)
    assert np.abs(total).max() < 1e-9 * np.abs(forces(system, x)).max()


def test_overfull_box_is_rejected():
    with pytest.raises(ValueError, match="do not fit"):
        random_state(SoftDisks(), 10_000, np.random.default_rng(0))


def test_evaluation_restarts_the_soft_disks_solver(tmp_path):
    """``sims evaluate`` of a GNS trained on soft_disks restarts the dataset's own solver (it assumed SPH)."""
    generate_soft_disks(tmp_path, seed=2, trajectories=1, frames=30, particles=40, progress=False)
    with TrajectoryReader(tmp_path / "test.h5") as reader:
        metadata, traj = reader.metadata, reader[0]
    positions = traj.position.astype(np.float64)
    solver = solver_rollout(metadata, positions, traj.particle_type, history=6, substeps=None)
    baseline = constant_velocity(positions, traj.particle_type, history=6)
    assert solver.diverged_at is None and solver.predicted.shape == (24, 40, 2)
    assert solver.errors["position_mse"].mean() < 0.2 * baseline.errors["position_mse"].mean()


@pytest.mark.parametrize("option", [{"frames": 2}, {"trajectories": 0}, {"particles": 1}])
def test_generation_refuses_too_few_frames_before_simulating(tmp_path, option):
    with pytest.raises(ValueError, match=f"{next(iter(option))}: must be at least"):
        generate_soft_disks(tmp_path, progress=False, **option)
    assert not list(tmp_path.iterdir())
