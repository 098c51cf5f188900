"""Pictures of calorimeter showers: average shower images and reference-vs-generated feature histograms."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.showers import CaloGeometry
from hep.calo.metrics import LAYER_FEATURES
from training.figures import pyplot, save_figure


def average_images(path: Path, showers: dict[str, np.ndarray], geometry: CaloGeometry,
                   layers: tuple[int, ...] = (2, 8, 15, 25)) -> None:
    """Mean energy per voxel [MeV] in polar (alpha, r) views of a few layers, one row per sample set, on a
    shared logarithmic colour scale."""
    plt = pyplot()
    from matplotlib.colors import LogNorm

    means = {name: s.reshape(len(s), *geometry.shape).mean(0) for name, s in showers.items()}
    positive = np.concatenate([m[m > 0] for m in means.values()])
    norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-6), vmax=positive.max())
    alpha = np.linspace(0, 2 * np.pi, geometry.n_alpha + 1)
    fig, axes = plt.subplots(len(means), len(layers), figsize=(3 * len(layers), 3 * len(means)),
                             subplot_kw={"projection": "polar"}, squeeze=False)
    for row, (name, mean) in enumerate(means.items()):
        for col, layer in enumerate(layers):
            ax = axes[row, col]
            image = np.ma.masked_less_equal(mean[layer], 0)
            mesh = ax.pcolormesh(alpha, geometry.radial_edges(), image.T, norm=norm, cmap="viridis")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{name}, layer {layer}", fontsize=9)
    fig.colorbar(mesh, ax=axes, label="mean energy per voxel [MeV]", shrink=0.8)
    save_figure(fig, path)


def profiles(path: Path, showers: dict[str, np.ndarray], energies: dict[str, np.ndarray],
             geometry: CaloGeometry) -> None:
    """Mean longitudinal (per layer) and radial (per ring) profiles, normalised to the incident energy."""
    plt = pyplot()
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(10, 4))
    for name, s in showers.items():
        v = s.reshape(len(s), *geometry.shape) / energies[name].reshape(-1, 1, 1, 1)
        ax_l.step(np.arange(geometry.n_layers), v.sum(axis=(2, 3)).mean(0), where="mid", label=name)
        ax_r.step(np.arange(geometry.n_radial), v.sum(axis=(1, 2)).mean(0), where="mid", label=name)
    ax_l.set(xlabel="layer (0.8 X0 each)", ylabel="mean E_layer / E_inc", yscale="log")
    ax_r.set(xlabel="ring (0.5 R_M each)", ylabel="mean E_ring / E_inc", yscale="log")
    ax_l.legend()
    fig.tight_layout()
    save_figure(fig, path)


def feature_histograms(path: Path, features: dict[str, dict[str, np.ndarray]], layer: int = 10,
                       bins: int = 40) -> None:
    """Histograms of E_ratio and of the per-layer features of one layer, every sample set on the binning of
    the first (the reference)."""
    plt = pyplot()
    names = ("E_ratio",) + LAYER_FEATURES
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    reference = next(iter(features.values()))
    for ax, name in zip(axes.flat, names):
        column = (lambda f: f[name]) if name == "E_ratio" else (lambda f: f[name][:, layer])
        lo, hi = np.percentile(column(reference), [0.5, 99.5])
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        for label, f in features.items():
            ax.hist(np.clip(column(f), edges[0], edges[-1]), edges, histtype="step", density=True, label=label)
        ax.set_title(name if name == "E_ratio" else f"{name}, layer {layer}", fontsize=10)
    axes.flat[-1].axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
