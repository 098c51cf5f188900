"""Pictures of a nowcast evaluation: frames side by side, CSI and CRPS against lead time, FSS against scale,
rank histograms, power spectra."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from training.figures import pyplot, save_figure

RAIN_LEVELS = (0.1, 0.5, 1, 2, 4, 8, 16, 32, 64)  # mm/h, colour boundaries


def frames_panel(rows: dict[str, np.ndarray], lead_indices: list[int], step_minutes: float, path: Path) -> None:
    """One row per method (``[T, H, W]`` mm/h, the observation first), one column per lead time."""
    plt = pyplot()
    from matplotlib.colors import BoundaryNorm

    norm = BoundaryNorm(RAIN_LEVELS, 256, extend="max")
    fig, axes = plt.subplots(len(rows), len(lead_indices), figsize=(2.2 * len(lead_indices), 2.2 * len(rows)),
                             squeeze=False)
    for r, (name, frames) in enumerate(rows.items()):
        for c, lead in enumerate(lead_indices):
            ax = axes[r, c]
            image = ax.imshow(np.ma.masked_less(frames[lead], RAIN_LEVELS[0]), origin="lower", cmap="turbo",
                              norm=norm, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"+{(lead + 1) * step_minutes:.0f} min")
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.6, label="rain rate [mm/h]")
    save_figure(fig, path)


def score_curves(curves: dict[str, dict[str, np.ndarray]], step_minutes: float, ylabel: str, path: Path,
                 higher_is_better: bool = True) -> None:
    """One panel per score (``curves[panel][method] = [T]``) against lead time in minutes."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.6), squeeze=False)
    for ax, (panel, methods) in zip(axes[0], curves.items()):
        for name, values in methods.items():
            leads = (np.arange(len(values)) + 1) * step_minutes
            ax.plot(leads, values, marker=".", label=name)
        ax.set_title(panel)
        ax.set_xlabel("lead time [min]")
        ax.set_ylabel(ylabel + (" (higher is better)" if higher_is_better else " (lower is better)"))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def scale_curves(curves: dict[str, dict[str, list[float]]], scales_km: tuple[int, ...], path: Path) -> None:
    """One panel per score (``curves[panel][method] = [len(scales)]``) against the neighbourhood size in km;
    the dotted line marks FSS = 0.5."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.6), squeeze=False)
    for ax, (panel, methods) in zip(axes[0], curves.items()):
        for name, values in methods.items():
            ax.semilogx(scales_km, values, marker=".", label=name)
        ax.axhline(0.5, color="k", ls=":", lw=0.8)
        ax.set_xticks(list(scales_km), [str(k) for k in scales_km])
        ax.minorticks_off()
        ax.set_title(panel)
        ax.set_xlabel("neighbourhood [km]")
        ax.set_ylabel("FSS (higher is better)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def rank_histograms(histograms: dict[str, np.ndarray], lead_indices: list[int], step_minutes: float,
                    path: Path) -> None:
    """Rank histograms (``[T, M + 1]`` relative frequencies per ensemble method) at the chosen leads; the
    dotted line is the flat histogram of a reliable ensemble (U-shaped: too little spread; domed: too much;
    sloped: biased)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(histograms), len(lead_indices), figsize=(3.2 * len(lead_indices),
                                                                          2.4 * len(histograms)), squeeze=False)
    for r, (name, frequencies) in enumerate(histograms.items()):
        for c, lead in enumerate(lead_indices):
            ax = axes[r, c]
            bins = frequencies.shape[1]
            ax.bar(np.arange(bins), frequencies[lead], color="tab:blue")
            ax.axhline(1.0 / bins, color="k", ls=":", lw=0.8)
            ax.set_xticks([0, bins - 1])
            if r == 0:
                ax.set_title(f"+{(lead + 1) * step_minutes:.0f} min")
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def spectra(psd: dict[str, np.ndarray], wavelength_km: np.ndarray, title: str, path: Path) -> None:
    """Radially averaged PSD against wavelength; a forecast whose small scales fall below the observation's
    is blurred."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    keep = np.isfinite(wavelength_km)
    for name, values in psd.items():
        ax.loglog(wavelength_km[keep], values[keep], label=name, lw=2.5 if name == "observed" else 1.2,
                  color="k" if name == "observed" else None)
    ax.invert_xaxis()
    ax.set_xlabel("wavelength [km]")
    ax.set_ylabel("power [(mm/h)^2]")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
