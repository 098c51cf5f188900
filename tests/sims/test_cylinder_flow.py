"""Cylinder-flow solver: DFG 2D-2 vortex shedding (Strouhal number), mass conservation, boundary conditions."""
import numpy as np
import pytest

from datasets.meshes import INFLOW, OBSTACLE, OUTFLOW, WALL_BOUNDARY, check_mesh
from sims.solvers.cylinder_flow import (STEADY_WAKE, Channel, CylinderFlow, channel_mesh, shedding_period,
                                        strouhal_number, wake_probe)


def test_channel_mesh_is_valid_and_typed():
    channel = Channel()
    pos, cells, types = channel_mesh(channel)
    check_mesh(pos, cells, types)
    on_cylinder = np.abs(np.linalg.norm(pos - channel.center, axis=1) - channel.radius) < 1e-6
    assert on_cylinder.sum() >= 2 * np.pi * channel.radius / channel.h_cylinder * 0.8
    assert (types[on_cylinder] == OBSTACLE).all()
    assert (types == INFLOW).any() and (types == OUTFLOW).any() and (types == WALL_BOUNDARY).any()
    assert (np.linalg.norm(pos - channel.center, axis=1) >= channel.radius - 1e-6).all()  # the hole is empty


def test_shedding_period_of_a_sampled_oscillation():
    t = np.arange(200) * 0.01  # a 0.37 s oscillation about an offset, sampled at 100 Hz, as rollouts are
    assert shedding_period(0.3 + np.sin(2 * np.pi * t / 0.37 + 0.4), 0.01) == pytest.approx(0.37, rel=2e-3)
    assert np.isnan(shedding_period(np.exp(-t), 0.01))  # no oscillation: no period
    jitter = -0.23 + 0.002 * np.sin(2 * np.pi * t / 0.05)  # a steady wake's solver jitter (test trajectory 2)
    assert np.isfinite(shedding_period(jitter, 0.01))
    assert np.isnan(shedding_period(jitter, 0.01, min_amplitude=STEADY_WAKE * 2.4))  # 0.1% of its 2.4 m/s inflow
    assert strouhal_number(Channel(), 1 / 3) == pytest.approx(0.3)  # D = 0.1 m, U = 1 m/s


def flux(flow: CylinderFlow, x: float) -> float:
    """Volume flux (m^2/s) through the vertical line at ``x`` from the P2 field."""
    y = np.linspace(1e-9, flow.channel.height - 1e-9, 401)
    u = flow.u_basis.probes(np.stack([np.full_like(y, x), y])) @ flow.u  # x components, then y components
    return float(np.trapezoid(u[:len(y)], y))


@pytest.mark.slow
def test_dfg_2d2_sheds_vortices_at_strouhal_0_30():
    channel = Channel()  # DFG 2D-2: Re = 100
    pos, cells, _ = channel_mesh(channel)
    dt = 0.001
    flow = CylinderFlow(channel, pos, cells, dt)
    probe = wake_probe(channel, pos)  # on the wake axis, 1.5 D behind
    assert np.linalg.norm(pos[probe] - [0.35, 0.2]) < channel.size(pos[probe:probe + 1])[0]  # the nearest node
    t, v = [], []
    for n in range(6000):
        flow.step()
        t.append((n + 1) * dt)
        v.append(flow.velocity[probe, 1])
    t, v = np.array(t), np.array(v)
    late = t > 3.5
    v = v[late] - v[late].mean()
    assert v.std() > 0.1  # shedding, not a steady wake
    strouhal = strouhal_number(channel, shedding_period(v, dt))
    assert abs(strouhal - 0.30) < 0.05 * 0.30, strouhal
    first, second = (shedding_period(half, dt) for half in np.array_split(v, 2))
    assert abs(first - second) < 0.01 * first  # periodic
    inflow = channel.mean_inflow * channel.height
    for x in (0.6, 2.0):  # mass is conserved downstream of the cylinder
        assert abs(flux(flow, x) - inflow) < 0.01 * inflow
