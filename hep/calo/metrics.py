"""CaloChallenge 2022 metrics: high-level shower features, histogram separation power, the classifier test
(AUC and JSD of a calibrated DNN telling generated from reference showers) and a Frechet distance.

Coordinates: a voxel of ring j and azimuthal bin k sits at ``(eta, phi)``-like coordinates
``(r_j cos a_k, r_j sin a_k)`` with r_j and a_k the bin centres, r in Moliere radii.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import linalg
from scipy.optimize import isotonic_regression
from torch import nn

from datasets.showers import CaloGeometry
from hep.classification import roc_auc

LAYER_FEATURES = ("E_layer", "center_eta", "center_phi", "width_eta", "width_phi", "sparsity")


def high_level_features(showers: np.ndarray, energy: np.ndarray, geometry: CaloGeometry) -> dict[str, np.ndarray]:
    """``E_ratio [N]`` (deposited / incident) and, per layer ``[N, L]``: energy [MeV], energy-weighted centres
    and widths in eta and phi [R_M] (0 for an empty layer), and sparsity (fraction of non-zero voxels)."""
    v = np.asarray(showers, dtype=np.float64).reshape(len(showers), *geometry.shape)
    r = 0.5 * (geometry.radial_edges()[1:] + geometry.radial_edges()[:-1])
    a = (np.arange(geometry.n_alpha) + 0.5) * 2 * np.pi / geometry.n_alpha
    coords = {"eta": r[None, :] * np.cos(a)[:, None], "phi": r[None, :] * np.sin(a)[:, None]}  # [A, R]
    e_layer = v.sum(axis=(2, 3))
    safe = np.where(e_layer > 0, e_layer, 1.0)
    features = {"E_ratio": v.sum(axis=(1, 2, 3)) / np.asarray(energy, dtype=np.float64).ravel(), "E_layer": e_layer}
    for name, c in coords.items():
        first = (v * c).sum(axis=(2, 3)) / safe
        second = (v * c ** 2).sum(axis=(2, 3)) / safe
        features[f"center_{name}"] = np.where(e_layer > 0, first, 0.0)
        features[f"width_{name}"] = np.where(e_layer > 0, np.sqrt(np.clip(second - first ** 2, 0, None)), 0.0)
    features["sparsity"] = (v > 0).mean(axis=(2, 3))
    return features


def feature_matrix(features: dict[str, np.ndarray]) -> np.ndarray:
    """All high-level features as columns ``[N, 1 + 6 L]`` (the classifier's and the Frechet distance's input)."""
    return np.column_stack([features["E_ratio"]] + [features[k] for k in LAYER_FEATURES])


def separation_power(reference: np.ndarray, generated: np.ndarray, bins: int = 30) -> float:
    """CaloChallenge's ``0.5 sum_i (h_r,i - h_g,i)^2 / (h_r,i + h_g,i)`` of unit-sum histograms on the
    reference's binning (0: identical, 1: disjoint); generated values outside it go to the edge bins."""
    lo, hi = np.min(reference), np.max(reference)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    h_r = np.histogram(reference, edges)[0] / len(reference)
    h_g = np.histogram(np.clip(generated, lo, hi), edges)[0] / len(generated)
    total = h_r + h_g
    return float(0.5 * np.sum(np.divide((h_r - h_g) ** 2, total, out=np.zeros_like(total), where=total > 0)))


def separation_powers(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> dict[str, float]:
    """Separation power per feature, averaged over layers for the per-layer features (empty layers skipped)."""
    out = {"E_ratio": separation_power(reference["E_ratio"], generated["E_ratio"])}
    for name in LAYER_FEATURES:
        per_layer = [separation_power(reference[name][:, k], generated[name][:, k])
                     for k in range(reference[name].shape[1]) if reference["E_layer"][:, k].any()]
        out[name] = float(np.mean(per_layer))
    return out


def frechet_distance(reference: np.ndarray, generated: np.ndarray) -> float:
    """``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` of Gaussians fitted to feature rows, after
    standardising every column by the reference (the Frechet physics distance of Kansal et al. 2023)."""
    mean, std = reference.mean(0), reference.std(0)
    std = np.where(std > 0, std, 1.0)
    r, g = (reference - mean) / std, (generated - mean) / std
    mu_r, mu_g = r.mean(0), g.mean(0)
    ridge = 1e-6 * np.eye(r.shape[1])  # keeps sqrtm stable when a covariance is singular (few samples)
    s_r, s_g = np.cov(r, rowvar=False) + ridge, np.cov(g, rowvar=False) + ridge
    root = linalg.sqrtm(s_r @ s_g)
    return float(np.sum((mu_r - mu_g) ** 2) + np.trace(s_r + s_g - 2 * np.real(root)))


def frechet_physics_distance(reference: np.ndarray, generated: np.ndarray, points: int = 5, repeats: int = 10,
                             seed: int = 0) -> tuple[float, float]:
    """The FPD of Kansal et al. (2023): the Frechet distance is biased upwards by about ``c / N`` at sample size
    N, so it is measured on random subsets of ``points`` sizes from half to all of the smaller sample and
    extrapolated linearly in 1/N to N = infinity. Returns the intercept and its standard error (0 for
    samples from one distribution, up to noise)."""
    rng = np.random.default_rng(seed)
    n_max = min(len(reference), len(generated))
    sizes = np.linspace(n_max // 2, n_max, points).astype(int)
    values = [np.mean([frechet_distance(reference[rng.choice(len(reference), n, replace=False)],
                                        generated[rng.choice(len(generated), n, replace=False)])
                       for _ in range(repeats)]) for n in sizes]
    design = np.column_stack([np.ones(points), 1.0 / sizes])
    coef, residual, *_ = np.linalg.lstsq(design, np.array(values), rcond=None)
    dof = max(points - 2, 1)
    sigma2 = float(residual[0]) / dof if len(residual) else 0.0
    covariance = sigma2 * np.linalg.inv(design.T @ design)
    return float(coef[0]), float(np.sqrt(covariance[0, 0]))


def isotonic_calibration(scores: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A monotone map from classifier scores to calibrated probabilities, fitted on held-out data."""
    order = np.argsort(scores)
    fitted = isotonic_regression(np.asarray(labels, dtype=np.float64)[order]).x
    xs = np.asarray(scores)[order]
    return lambda s: np.interp(s, xs, fitted)


@torch.enable_grad()  # it trains a network, also when called under no_grad (a Trainer's evaluation)
def classifier_test(reference: np.ndarray, generated: np.ndarray, seed: int = 0, hidden: int = 512,
                    epochs: int = 50, lr: float = 2e-4, batch_size: int = 256, patience: int = 10) -> dict[str, float]:
    """The challenge's classifier metric: a DNN (two hidden layers, leaky ReLU, dropout 0.2) learns to tell
    generated (label 1) from reference (label 0) rows on a 60/20/20 split, with early stopping on the
    validation loss and isotonic calibration on the validation set. Returns the test AUC (0.5: the
    classifier cannot tell them apart) and the Jensen-Shannon divergence estimate ``ln 2 - BCE`` of the
    calibrated probabilities, divided by ln 2 (0: indistinguishable, 1: disjoint).

    The challenge uses 2048 hidden units on GPUs; ``hidden`` defaults smaller for CPUs."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([reference, generated]).astype(np.float32)
    y = np.concatenate([np.zeros(len(reference)), np.ones(len(generated))]).astype(np.float32)
    idx = rng.permutation(len(x))
    n_train, n_val = int(0.6 * len(x)), int(0.2 * len(x))
    parts = np.split(idx, [n_train, n_train + n_val])
    mean, std = x[parts[0]].mean(0), x[parts[0]].std(0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.LeakyReLU(), nn.Dropout(0.2),
                        nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Dropout(0.2), nn.Linear(hidden, 1))
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    best, best_state, waited = np.inf, None, 0
    train_idx = torch.from_numpy(parts[0])
    for _ in range(epochs):
        net.train()
        for batch in train_idx[torch.randperm(len(train_idx))].split(batch_size):
            optimiser.zero_grad()
            loss_fn(net(xt[batch]).squeeze(1), yt[batch]).backward()
            optimiser.step()
        val = _logits(net, xt[parts[1]])
        val_loss = float(loss_fn(torch.from_numpy(val), yt[parts[1]]))
        if val_loss < best:
            best, best_state, waited = val_loss, {k: v.clone() for k, v in net.state_dict().items()}, 0
        else:
            waited += 1
            if waited >= patience:
                break
    net.load_state_dict(best_state)
    calibrate = isotonic_calibration(_logits(net, xt[parts[1]]), y[parts[1]])
    test_logits = _logits(net, xt[parts[2]])
    p = np.clip(calibrate(test_logits), 1e-7, 1 - 1e-7)
    labels = y[parts[2]]
    bce = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    return {"auc": roc_auc(labels, test_logits), "jsd": float(max(np.log(2) - bce, 0.0) / np.log(2))}


@torch.no_grad()
def _logits(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    net.eval()
    return net(x).squeeze(1).numpy()
