"""Pictures of tracking results: ROC curve, efficiency against pT and eta, and an event display."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from training.figures import pyplot, save_figure


def roc(path: Path, y: np.ndarray, scores: np.ndarray) -> None:
    """Edge ROC: true-positive rate against false-positive rate (log x)."""
    plt = pyplot()
    order = np.argsort(-scores)
    tp, fp = np.cumsum(y[order]), np.cumsum(~y[order])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(fp / max(fp[-1], 1), tp / max(tp[-1], 1))
    ax.set(xscale="log", xlim=(1e-4, 1), xlabel="false-positive rate (fake edges kept)",
           ylabel="true-positive rate (true edges kept)", title="GNN edge classifier")
    fig.tight_layout()
    save_figure(fig, path)


def efficiency_curves(path: Path, particles: dict[str, np.ndarray]) -> None:
    """Tracking efficiency of both methods against pT and against eta (particles with >= 3 hits)."""
    plt = pyplot()
    fig, (ax_pt, ax_eta) = plt.subplots(1, 2, figsize=(10, 4))
    wanted = particles["wanted"]
    for ax, key, edges, cut in ((ax_pt, "pt", np.geomspace(0.5, 10, 13), None),
                                (ax_eta, "eta_proxy", np.linspace(-2.5, 2.5, 11), 1.0)):
        select = wanted if cut is None else wanted & (particles["pt"] > cut)
        x = particles[key][select]
        centres = 0.5 * (edges[1:] + edges[:-1])
        for method in ("gnn", "hough"):
            hit = np.histogram(x[particles[method][select]], edges)[0]
            total = np.histogram(x, edges)[0]
            ax.plot(centres, np.divide(hit, total, out=np.full(len(hit), np.nan), where=total > 0), "o-",
                    label="GNN" if method == "gnn" else "Hough")
        ax.set(ylim=(0, 1.05), ylabel="tracking efficiency")
    ax_pt.set(xscale="log", xlabel="pT [GeV]")
    ax_eta.set(xlabel="eta (pT > 1 GeV)")
    ax_pt.legend()
    fig.tight_layout()
    save_figure(fig, path)


def event_display(path: Path, event, labels: np.ndarray, pt_min: float = 1.0) -> None:
    """x-y and r-z views: hits of particles above ``pt_min`` coloured by particle (left pair) and all hits by
    GNN track (right pair); other hits grey."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.5))
    x, y, z = event.position.T
    r = np.hypot(x, y)
    fast = np.where(event.particle_id >= 0, event.particle_pt[np.maximum(event.particle_id, 0)] > pt_min, False)
    truth = np.where(fast, event.particle_id, -1)
    for pair, (ids, title) in enumerate(((truth, f"truth, pT > {pt_min:g} GeV"), (labels, "GNN tracks"))):
        colours = np.where(ids >= 0, ids % 20, -1)
        for ax, (h, v, xl, yl) in zip(axes[2 * pair: 2 * pair + 2], ((x, y, "x [mm]", "y [mm]"),
                                                                   (z, r, "z [mm]", "r [mm]"))):
            ax.scatter(h[colours < 0], v[colours < 0], s=1, c="lightgrey")
            ax.scatter(h[colours >= 0], v[colours >= 0], s=2, c=colours[colours >= 0], cmap="tab20")
            ax.set(xlabel=xl, ylabel=yl, title=title)
    fig.tight_layout()
    save_figure(fig, path)
