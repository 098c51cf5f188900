"""``physml sims inspect RUN``: which message-passing steps a learned simulator needs, and what its messages carry.

For a MeshGraphNet or a GNS run, on test trajectories (gnn.interpret):
- step ablation: the rollout error over the first ``horizon`` steps (MeshGraphNet: RMSE of the fields;
  GNS: position MSE) with each processor step skipped (zero update) in turn, against the intact model
  (``table.md``, ``metrics.json``);
- ``messages.png``: the mean norm of each step's edge messages, and, for three steps, the message norm
  against the physical quantity the edge should carry: the edge's strain |x_s - x_r| / L - 1 (cloth: a
  spring's force grows with it) or the velocity difference |v_s - v_r| (flow) at the rollouts' first frame;
  the particles' distance |x_s - x_r| (GNS: pressure and viscosity act within the connectivity radius) at
  mid-trajectory. The Spearman correlation of the two per step is in ``metrics.json`` (``info``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datasets.atomic import atomic_folder, refuse_overwriting_inputs
from datasets.meshes import MeshTrajectoryReader
from datasets.trajectories import TrajectoryReader
from gnn.interpret import ablate_steps, record_messages
from sims import train_gns, train_mgn
from sims.gns import GNS
from sims.mesh_rollout import first_frame, mgn_rollouts
from sims.mesh_samples import collate, frame_state
from sims.rollout import learned_rollout
from training.figures import pyplot, save_figure
from training.recipe import load
from training.report import Column, Report


@dataclass
class Probe:
    """What the inspection asks of a simulator: its rollout error as the network is now, and one forward pass
    over all trajectories (its messages recorded) with the physical quantity of each edge and its name."""

    metric: str                                         # the error's name and unit
    trajectories: int                                   # how many it rolls out
    error: Callable[[], float]
    forward: Callable[[], object]
    edge_quantity: Callable[[], tuple[np.ndarray, str]]


def inspect(run_dir: str, *, data: str | None = None, out: str | None = None, trajectories: int = 8,
            horizon: int = 20) -> Report:
    """Step ablation and message inspection of a MeshGraphNet or GNS; see the module docstring.

    Args:
        run_dir: a ``train-mgn`` or ``train-gns`` run folder.
        data: trajectory file (default: test.h5 of the run's data).
        out: output folder (default: RUN_DIR/inspect; replaced atomically).
        trajectories: how many trajectories to roll out.
        horizon: rollout steps scored.
    """
    model, run = load(run_dir, [train_mgn.RECIPE, train_gns.RECIPE])
    data_file = data or str(Path(run.data_dir) / "test.h5")
    out = out or str(Path(run_dir) / "inspect")
    refuse_overwriting_inputs(out, [data_file, run.data_dir])
    probe = (_gns_probe if isinstance(model, GNS) else _mgn_probe)(model, data_file, trajectories, horizon)
    columns = [Column("error", f"rollout {probe.metric}", format=".4g"), Column("ratio", "/ intact", format=".2f")]
    intact = probe.error()
    report = Report(f"Step ablation of {Path(run_dir).name}: rollout {probe.metric} over {horizon} steps, "
                    f"{probe.trajectories} trajectories of {data_file}", columns,
                    info={"run_dir": str(run_dir), "out": str(out)})
    report.add("intact", "intact model", {"error": intact, "ratio": 1.0})
    steps = len(model.net.processor)
    for s in range(steps):
        with ablate_steps(model.net, [s]):
            value = probe.error()
        report.add(f"step_{s}", f"step {s} skipped", {"error": value, "ratio": value / intact})
    with torch.no_grad(), record_messages(model) as messages:
        probe.forward()
    norms = [messages[f"net.processor.{s}.edges.0"][0].norm(dim=-1).numpy() for s in range(steps)]
    physical, name = probe.edge_quantity()
    report.info.update(edge_quantity=name, spearman_message_norm_vs_edge_quantity=[_spearman(n, physical)
                                                                                    for n in norms])
    with atomic_folder(out) as tmp:
        report.write(tmp)
        _figure(tmp / "messages.png", norms, physical, name)
    return report


def _mgn_probe(model: torch.nn.Module, data_file: str, trajectories: int, horizon: int) -> Probe:
    """MeshGraphNet: mean over trajectories of the fields' RMSE over ``horizon`` batched rollout steps."""
    with MeshTrajectoryReader(data_file) as reader:
        trajs = [reader[i] for i in range(min(trajectories, len(reader)))]
    kind = model.cfg.kind
    state = collate([frame_state(traj, first_frame(kind), kind) for traj in trajs])

    def error() -> float:
        rollouts = mgn_rollouts(model, trajs, horizon, precision="fp32")
        return float(np.mean([np.sqrt(r.squared_error.mean()) for r in rollouts]))

    def edge_quantity() -> tuple[np.ndarray, str]:
        s, r = state.senders, state.receivers
        if kind == "flow":
            return (state.velocity[s] - state.velocity[r]).norm(dim=-1).numpy(), "|v_s - v_r| [m/s]"
        rest = (state.mesh_pos[s] - state.mesh_pos[r]).norm(dim=-1)
        return ((state.world_pos[s] - state.world_pos[r]).norm(dim=-1) / rest - 1).abs().numpy(), "|strain|"

    return Probe("RMSE", len(trajs), error, lambda: model(state), edge_quantity)


def _gns_probe(model: GNS, data_file: str, trajectories: int, horizon: int) -> Probe:
    """GNS: mean over trajectories of the position MSE over ``horizon`` rollout steps from the first frames;
    messages at mid-trajectory (the lattice of the first frames has only a few distinct distances)."""
    history = model.cfg.history
    with TrajectoryReader(data_file) as reader:
        trajs = [reader[i] for i in range(min(trajectories, len(reader)))]
    start = max(0, min(len(t.position) for t in trajs) // 2 - history)  # mid-trajectory: drops have hit, spacings vary
    window = torch.cat([torch.from_numpy(t.position[start:start + history].astype(np.float32)).transpose(0, 1)
                        for t in trajs])
    types = torch.cat([torch.from_numpy(t.particle_type) for t in trajs])
    batch = torch.cat([torch.full((len(t.particle_type),), k) for k, t in enumerate(trajs)])

    def error() -> float:
        return float(np.mean([learned_rollout(model, t.position[: history + horizon], t.particle_type, history,
                                              precision="fp32").errors["position_mse"].mean() for t in trajs]))

    def edge_quantity() -> tuple[np.ndarray, str]:
        graph = model.graph(window, types, batch)
        return (window[graph.senders, -1] - window[graph.receivers, -1]).norm(dim=-1).numpy(), "|x_s - x_r| [m]"

    return Probe("MSE [m^2]", len(trajs), error, lambda: model(window, types, batch), edge_quantity)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(x)).astype(float) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def _figure(path: Path, norms: list[np.ndarray], physical: np.ndarray, name: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].bar(range(len(norms)), [n.mean() for n in norms])
    axes[0].set(xlabel="message-passing step", ylabel="mean message norm (edges)")
    edges = np.quantile(physical, np.linspace(0, 1, 11))
    which = np.clip(np.digitize(physical, edges[1:-1]), 0, 9)
    centres = [np.median(physical[which == b]) for b in range(10)]
    for s in sorted({0, len(norms) // 2, len(norms) - 1}):
        axes[1].plot(centres, [norms[s][which == b].mean() for b in range(10)], "o-", label=f"step {s}")
    axes[1].set(xscale="log", xlabel=f"{name} (deciles)", ylabel="mean message norm")
    axes[1].legend()
    fig.tight_layout()
    save_figure(fig, path)
