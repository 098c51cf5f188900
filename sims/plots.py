"""Pictures of particle rollouts: ground truth beside prediction (PNG strip, GIF) and error against time."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.atomic import atomic_path
from training.figures import pyplot, save_figure


def _panel(ax, positions: np.ndarray, bounds: np.ndarray, title: str) -> None:
    ax.scatter(positions[:, 0], positions[:, 1], s=2, c="tab:blue")
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def frame_strip(path: Path, truth: np.ndarray, predicted: np.ndarray, bounds: np.ndarray, frames: int = 5) -> None:
    """Ground truth (top) and prediction (bottom) at ``frames`` evenly spaced steps."""
    plt = pyplot()
    steps = np.linspace(0, len(truth) - 1, frames).astype(int)
    fig, axes = plt.subplots(2, frames, figsize=(2.2 * frames, 4.6))
    for col, t in enumerate(steps):
        _panel(axes[0, col], truth[t], bounds, f"solver, step {t + 1}")
        _panel(axes[1, col], predicted[t], bounds, f"learned, step {t + 1}")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def animation(path: Path, truth: np.ndarray, predicted: np.ndarray, bounds: np.ndarray, stride: int = 2) -> None:
    """A GIF of the solver and the learned simulator side by side."""
    plt = pyplot()
    from PIL import Image

    fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
    images = []
    for t in range(0, len(truth), stride):
        for ax in axes:
            ax.clear()
        _panel(axes[0], truth[t], bounds, f"solver, step {t + 1}")
        _panel(axes[1], predicted[t], bounds, f"learned, step {t + 1}")
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
