"""``physml sims inspect-mgn``: which message-passing steps a MeshGraphNet needs, and what its messages carry.

On test trajectories (gnn.interpret):
- step ablation: the rollout RMSE over the first ``horizon`` steps with each processor step skipped (zero
  update) in turn, against the intact model (``table.md``, ``metrics.json``);
- ``messages.png``: the mean norm of each step's mesh-edge messages, and, for three steps, the message norm
  against the physical quantity the edge should carry: the edge's strain |x_s - x_r| / L - 1 (cloth: a
  spring's force grows with it) or the velocity difference |v_s - v_r| (flow), at the rollouts' first frame.
  The Spearman correlation of the two per step is in ``metrics.json`` (``info``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datasets.atomic import atomic_folder, refuse_overwriting_inputs
from datasets.meshes import MeshTrajectoryReader
from gnn.interpret import ablate_steps, record_messages
from sims.mesh_rollout import first_frame, mgn_rollouts
from sims.mesh_samples import collate, frame_state
from sims.train_mgn import RECIPE
from training.figures import pyplot, save_figure
from training.recipe import load
from training.report import Column, Report

COLUMNS = [Column("rmse", "rollout RMSE", format=".4g"), Column("ratio", "/ intact", format=".2f")]


def inspect_mgn(run_dir: str, *, data: str | None = None, out: str | None = None, trajectories: int = 8,
                horizon: int = 20) -> Report:
    """Step ablation and message inspection of a MeshGraphNet; see the module docstring.

    Args:
        run_dir: a ``train mgn`` run folder.
        data: trajectory file (default: test.h5 of the run's data).
        out: output folder (default: RUN_DIR/inspect; replaced atomically).
        trajectories: how many trajectories to roll out.
        horizon: rollout steps scored.
    """
    model, run = load(run_dir, [RECIPE])
    data_file = data or str(Path(run.data_dir) / "test.h5")
    out = out or str(Path(run_dir) / "inspect")
    refuse_overwriting_inputs(out, [data_file, run.data_dir])
    with MeshTrajectoryReader(data_file) as reader:
        trajs = [reader[i] for i in range(min(trajectories, len(reader)))]
    kind = model.cfg.kind

    def rmse() -> float:
        rollouts = mgn_rollouts(model, trajs, horizon, precision="fp32")
        return float(np.mean([np.sqrt(r.squared_error.mean()) for r in rollouts]))

    intact = rmse()
    report = Report(f"Step ablation of {Path(run_dir).name}: RMSE over {horizon} rollout steps, {len(trajs)} "
                    f"trajectories of {data_file}", COLUMNS, info={"run_dir": str(run_dir), "out": str(out)})
    report.add("intact", "intact model", {"rmse": intact, "ratio": 1.0})
    steps = len(model.net.processor)
    for s in range(steps):
        with ablate_steps(model.net, [s]):
            value = rmse()
        report.add(f"step_{s}", f"step {s} skipped", {"rmse": value, "ratio": value / intact})
    state = collate([frame_state(traj, first_frame(kind), kind) for traj in trajs])
    with torch.no_grad(), record_messages(model) as messages:
        model(state)
    norms = [messages[f"net.processor.{s}.edges.0"][0].norm(dim=-1).numpy() for s in range(steps)]
    physical, name = _edge_quantity(state, kind)
    report.info.update(edge_quantity=name, spearman_message_norm_vs_edge_quantity=[_spearman(n, physical)
                                                                                    for n in norms])
    with atomic_folder(out) as tmp:
        report.write(tmp)
        _figure(tmp / "messages.png", norms, physical, name)
    return report


def _edge_quantity(state, kind: str) -> tuple[np.ndarray, str]:
    s, r = state.senders, state.receivers
    if kind == "flow":
        return (state.velocity[s] - state.velocity[r]).norm(dim=-1).numpy(), "|v_s - v_r| [m/s]"
    rest = (state.mesh_pos[s] - state.mesh_pos[r]).norm(dim=-1)
    return ((state.world_pos[s] - state.world_pos[r]).norm(dim=-1) / rest - 1).abs().numpy(), "|strain|"


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(x)).astype(float) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def _figure(path: Path, norms: list[np.ndarray], physical: np.ndarray, name: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].bar(range(len(norms)), [n.mean() for n in norms])
    axes[0].set(xlabel="message-passing step", ylabel="mean message norm (mesh edges)")
    edges = np.quantile(physical, np.linspace(0, 1, 11))
    which = np.clip(np.digitize(physical, edges[1:-1]), 0, 9)
    centres = [np.median(physical[which == b]) for b in range(10)]
    for s in sorted({0, len(norms) // 2, len(norms) - 1}):
        axes[1].plot(centres, [norms[s][which == b].mean() for b in range(10)], "o-", label=f"step {s}")
    axes[1].set(xscale="log", xlabel=f"{name} (deciles)", ylabel="mean message norm")
    axes[1].legend()
    fig.tight_layout()
    save_figure(fig, path)
