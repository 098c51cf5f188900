"""Pictures of rollouts: ground truth beside prediction (PNG strip, GIF) for particles, flow fields on meshes
and cloth, and error against time."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from datasets.atomic import atomic_path
from training.figures import pyplot, save_figure

Draw = Callable[[object, np.ndarray, str], None]  # (axes, one frame, title)


def particles(bounds: np.ndarray) -> Draw:
    """Particles as dots in a fixed box."""
    def draw(ax, positions: np.ndarray, title: str) -> None:
        ax.scatter(positions[:, 0], positions[:, 1], s=2, c="tab:blue")
        ax.set_xlim(*bounds[0])
        ax.set_ylim(*bounds[1])
        _finish(ax, title)

    return draw


def speed_field(mesh_pos: np.ndarray, cells: np.ndarray, vmax: float) -> Draw:
    """The velocity magnitude on the mesh (m/s), one colour scale for every panel."""
    def draw(ax, velocity: np.ndarray, title: str) -> None:
        ax.tripcolor(mesh_pos[:, 0], mesh_pos[:, 1], cells, np.linalg.norm(velocity, axis=-1), shading="gouraud",
                     vmin=0.0, vmax=vmax, cmap="viridis")
        _finish(ax, title)

    return draw


def cloth(cells: np.ndarray, limits: np.ndarray) -> Draw:
    """The cloth as a shaded 3-D surface in fixed limits ``[3, 2]`` (needs 3-D axes)."""
    def draw(ax, world_pos: np.ndarray, title: str) -> None:
        ax.plot_trisurf(world_pos[:, 0], world_pos[:, 2], world_pos[:, 1], triangles=cells, color="tab:orange",
                        edgecolor="none", shade=True)
        ax.set(xlim=limits[0], ylim=limits[2], zlim=limits[1])
        ax.view_init(elev=20, azim=-60)
        ax.set_axis_off()
        ax.set_title(title, fontsize=8)

    return draw


def _finish(ax, title: str) -> None:
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def frame_strip(path: Path, truth: np.ndarray, predicted: np.ndarray, draw: Draw, frames: int = 5,
                three_d: bool = False, size: tuple[float, float] = (2.2, 2.3)) -> None:
    """Ground truth (top) and prediction (bottom) at ``frames`` evenly spaced steps."""
    plt = pyplot()
    steps = np.linspace(0, len(truth) - 1, frames).astype(int)
    fig, axes = plt.subplots(2, frames, figsize=(size[0] * frames, 2 * size[1]), squeeze=False,
                             subplot_kw={"projection": "3d"} if three_d else None)
    for col, t in enumerate(steps):
        draw(axes[0, col], truth[t], f"solver, step {t + 1}")
        draw(axes[1, col], predicted[t], f"learned, step {t + 1}")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def animation(path: Path, truth: np.ndarray, predicted: np.ndarray, draw: Draw, stride: int = 2,
              three_d: bool = False, size: tuple[float, float] = (6, 3.2)) -> None:
    """A GIF of the solver and the learned simulator side by side."""
    plt = pyplot()
    from PIL import Image

    fig, axes = plt.subplots(1, 2, figsize=size, subplot_kw={"projection": "3d"} if three_d else None)
    images = []
    for t in range(0, len(truth), stride):
        for ax in axes:
            ax.clear()
        draw(axes[0], truth[t], f"solver, step {t + 1}")
        draw(axes[1], predicted[t], f"learned, step {t + 1}")
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]))
    plt.close(fig)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        images[0].save(fh, format="GIF", save_all=True, append_images=images[1:], duration=66, loop=0)


def error_curves(path: Path, curves: dict[str, np.ndarray], ylabel: str = "position MSE [m^2]") -> None:
    """One line per method of an error against rollout step (log scale)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("rollout step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
