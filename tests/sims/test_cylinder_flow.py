"""Cylinder-flow solver: DFG 2D-2 vortex shedding (Strouhal number), mass conservation, boundary conditions."""
import numpy as np
import pytest

from datasets.meshes import INFLOW, OBSTACLE, OUTFLOW, WALL_BOUNDARY, check_mesh
from sims.solvers.cylinder_flow import Channel, CylinderFlow, channel_mesh


def test_channel_mesh_is_valid_and_typed():
    channel = Channel()
    pos, cells, types = channel_mesh(channel)
    check_mesh(pos, cells, types)
    on_cylinder = np.abs(np.linalg.norm(pos - channel.center, axis=1) - channel.radius) < 1e-6
    assert on_cylinder.sum() >= 2 * np.pi * channel.radius / channel.h_cylinder * 0.8
    assert (types[on_cylinder] == OBSTACLE).all()
    assert (types == INFLOW).any() and (types == OUTFLOW).any() and (types == WALL_BOUNDARY).any()
    assert (np.linalg.norm(pos - channel.center, axis=1) >= channel.radius - 1e-6).all()  # the hole is empty


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
    probe = np.argmin(np.linalg.norm(pos - [0.35, 0.2], axis=1))  # on the wake axis, 1.5 D behind
    t, v = [], []
    for n in range(6000):
        flow.step()
        t.append((n + 1) * dt)
        v.append(flow.velocity[probe, 1])
    t, v = np.array(t), np.array(v)
    late = t > 3.5
    v = v[late] - v[late].mean()
    assert v.std() > 0.1  # shedding, not a steady wake
    up = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
    crossings = t[late][up] - v[up] * dt / (v[up + 1] - v[up])
    strouhal = 2 * channel.radius / np.diff(crossings).mean() / channel.mean_inflow
    assert abs(strouhal - 0.30) < 0.05 * 0.30, strouhal
    assert np.diff(crossings).std() < 0.01 * np.diff(crossings).mean()  # periodic
    inflow = channel.mean_inflow * channel.height
    for x in (0.6, 2.0):  # mass is conserved downstream of the cylinder
        assert abs(flux(flow, x) - inflow) < 0.01 * inflow
