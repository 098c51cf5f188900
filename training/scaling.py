"""Scaling laws fitted to training runs: Chinchilla's parametric loss, Kaplan's power laws, routed models.

- Chinchilla, Approach 3 (Hoffmann et al. 2022): ``L(N, D) = E + A / N^alpha + B / D^beta`` for ``N``
  parameters and ``D`` training samples (tokens); fitted as published: ``log L`` against
  ``LSE(a - alpha log N, b - beta log D, e)`` (``A = e^a``, ``B = e^b``, ``E = e^e``), the Huber loss with
  ``delta = 1e-3`` summed over runs, L-BFGS from a grid of starts (alpha, beta in 0 .. 2 by 0.5; e in -1 .. 1
  by 0.5; a, b in 0 .. 25 by 5; the 16 starts of lowest objective are refined, the best result kept);
  standard errors and intervals from a bootstrap over runs. With ``C = k N D`` (``k = 6`` FLOPs per parameter
  per token for a language model; for runs with counted FLOPs, the median of ``C / (N D)`` over the dense
  runs: each of a jet's ~50 particles uses every parameter, and attention and the pair embedding add FLOPs
  that no parameter counts, so the sweep's ParT has k ~ 2,000), the compute-optimal split is
  ``N*(C) = G (C / k)^(beta / (alpha + beta))``, ``D*(C) = (C / k)^(alpha / (alpha + beta)) / G``,
  ``G = (alpha A / (beta B))^(1 / (alpha + beta))``.
- Kaplan et al. (2020): ``L(X) = (X_c / X)^alpha_X`` for X = N (each size's lowest loss over the data sizes
  tried) and X = D (each data size's lowest loss over the model sizes), least squares in log-log.
- Routed models (Clark et al. 2022): ``log L = a log N + b log E^ + c log N log E^ + d`` with ``N`` the dense
  model's parameters, ``E`` the number of experts and the saturating ``1 / E^ = 1 / (E - 1 + (1 / E_start -
  1 / E_max)^-1) + 1 / E_max``; least squares for ``a, b, c, d`` at each ``(E_start, E_max)`` of a grid, the
  best kept.

:func:`sweep` makes the runs: a grid of model sizes x training samples (x experts) of one domain's
:class:`ScalingTask`, each trained with the run protocol, into one ``results.csv``.
"""
from __future__ import annotations

import csv
import fcntl
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import least_squares, minimize
from scipy.special import logsumexp
from torch.utils.flop_counter import FlopCounterMode

from datasets.atomic import atomic_open
from training.figures import pyplot, save_figure
from training.recipe import Built, Recipe, train
from training.seeding import seed_everything

EPOCH_EXCLUDED = 5  # runs of highest loss Epoch AI's refit of the Chinchilla extraction leaves out
CHINCHILLA_GRID = {"alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5), "e": np.arange(-1, 1.01, 0.5),
                   "a": np.arange(0, 26, 5.0), "b": np.arange(0, 26, 5.0)}


@dataclass
class ChinchillaLaw:
    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        return self.E + self.A / np.asarray(n, float) ** self.alpha + self.B / np.asarray(d, float) ** self.beta

    def optimal(self, compute: np.ndarray, k: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal parameters and samples ``(N*, D*)`` for budgets ``C = k N D`` [FLOP]."""
        c = np.asarray(compute, float) / k
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        return g * c ** (self.beta / (self.alpha + self.beta)), c ** (self.alpha / (self.alpha + self.beta)) / g


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative, elementwise."""
    small = np.abs(r) <= delta
    return np.where(small, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta)), np.where(small, r, delta * np.sign(r))


def _objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray, delta: float
               ) -> tuple[float, np.ndarray]:
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])   # [3, runs]
    lse = logsumexp(terms, axis=0)
    value, slope = _huber(lse - log_l, delta)
    w = np.exp(terms - lse) * slope                                                   # d/d(term)
    grad = np.array([w[0].sum(), w[1].sum(), w[2].sum(), -(w[0] * log_n).sum(), -(w[1] * log_d).sum()])
    return float(value.sum()), grad


def fit_chinchilla(n: np.ndarray, d: np.ndarray, loss: np.ndarray, delta: float = 1e-3, refine: int = 16,
                   starts: np.ndarray | None = None) -> ChinchillaLaw:
    """Approach 3 of Hoffmann et al. (see the module docstring).

    Args:
        n: parameters per run; d: training samples per run; loss: final validation loss per run.
        delta: the Huber loss's threshold on log L.
        refine: starts of the grid (lowest objective first) refined by L-BFGS.
        starts: ``[S, 5]`` starting points ``(a, b, e, alpha, beta)`` (default: the published grid).
    """
    log_n, log_d, log_l = (np.log(np.asarray(x, float)) for x in (n, d, loss))
    if starts is None:
        g = CHINCHILLA_GRID
        starts = np.array(list(itertools.product(g["a"], g["b"], g["e"], g["alpha"], g["beta"])))
    values = np.array([_objective(s, log_n, log_d, log_l, delta)[0] for s in starts])
    best = None
    for s in starts[np.argsort(values)[:refine]]:
        result = minimize(_objective, s, args=(log_n, log_d, log_l, delta), jac=True, method="L-BFGS-B",
                          options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return ChinchillaLaw(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=float(alpha),
                         beta=float(beta))


def bootstrap_chinchilla(n: np.ndarray, d: np.ndarray, loss: np.ndarray, fit: ChinchillaLaw, samples: int = 200,
                         seed: int = 0, delta: float = 1e-3) -> list[ChinchillaLaw]:
    """Refits on ``samples`` resamplings of the runs (with replacement), each started from ``fit``."""
    rng = np.random.default_rng(seed)
    start = np.array([[np.log(fit.A), np.log(fit.B), np.log(fit.E), fit.alpha, fit.beta]])
    n, d, loss = (np.asarray(x, float) for x in (n, d, loss))
    fits = []
    for _ in range(samples):
        i = rng.integers(0, len(n), len(n))
        fits.append(fit_chinchilla(n[i], d[i], loss[i], delta, refine=1, starts=start))
    return fits


def fit_power_law(x: np.ndarray, loss: np.ndarray) -> tuple[float, float]:
    """Kaplan's ``L = (x_c / x)^alpha``: returns ``(x_c, alpha)`` (least squares in log-log)."""
    slope, intercept = np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(loss, float)), 1)
    alpha = -slope
    return float(np.exp(intercept / alpha)), float(alpha)


def fit_size_law(n: np.ndarray, loss: np.ndarray) -> tuple[float, float, float]:
    """``L(N) = F + A / N^alpha`` at one training-set size (``F`` holds ``E + B / D^beta``, which one size
    cannot split): returns ``(F, A, alpha)``, least squares on ``log L`` from a grid of starts."""
    log_n, log_l = np.log(np.asarray(n, float)), np.log(np.asarray(loss, float))

    def residual(theta: np.ndarray) -> np.ndarray:
        f, a, alpha = theta
        return np.logaddexp(f, a - alpha * log_n) - log_l

    starts = [(f, a, alpha) for f in log_l.min() + np.log([0.5, 0.9]) for a in (0.0, 5.0, 10.0)
              for alpha in (0.2, 0.5, 1.0)]
    best = min((least_squares(residual, start) for start in starts), key=lambda r: r.cost)
    f, a, alpha = best.x
    return float(np.exp(f)), float(np.exp(a)), float(alpha)


def bootstrap_size_law(n: np.ndarray, loss: np.ndarray, samples: int = 200, seed: int = 0
                       ) -> list[tuple[float, float, float]]:
    """:func:`fit_size_law` on ``samples`` resamplings of the runs (with replacement); resamplings with fewer
    than three distinct sizes, which cannot fix three constants, are skipped."""
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(samples):
        i = rng.integers(0, len(n), len(n))
        if len(np.unique(n[i])) >= 3:
            fits.append(fit_size_law(n[i], loss[i]))
    return fits


def effective_experts(experts: np.ndarray, e_start: float, e_max: float) -> np.ndarray:
    """Clark et al.'s saturating expert count ``E^`` (about E in between, E_max for many experts)."""
    e = np.asarray(experts, float)
    return 1 / (1 / (e - 1 + 1 / (1 / e_start - 1 / e_max)) + 1 / e_max)


@dataclass
class RoutedLaw:
    a: float
    b: float
    c: float
    d: float
    e_start: float
    e_max: float

    def loss(self, n: np.ndarray, experts: np.ndarray) -> np.ndarray:
        ln, le = np.log(np.asarray(n, float)), np.log(effective_experts(experts, self.e_start, self.e_max))
        return np.exp(self.a * ln + self.b * le + self.c * ln * le + self.d)


def fit_routed(n: np.ndarray, experts: np.ndarray, loss: np.ndarray,
               e_start: np.ndarray = np.geomspace(1.1, 8, 12), e_max: np.ndarray = np.geomspace(16, 4096, 12)
               ) -> RoutedLaw:
    """Clark et al.'s bilinear law in ``log N`` and ``log E^`` (see the module docstring); ``e_start`` and
    ``e_max``: the grid searched for the saturation constants."""
    ln, ll = np.log(np.asarray(n, float)), np.log(np.asarray(loss, float))
    best = None
    for s, m in itertools.product(e_start, e_max):
        le = np.log(effective_experts(experts, s, m))
        design = np.stack([ln, le, ln * le, np.ones_like(ln)], 1)
        coef, *_ = np.linalg.lstsq(design, ll, rcond=None)
        err = float(((design @ coef - ll) ** 2).sum())
        if best is None or err < best[0]:
            best = (err, coef, s, m)
    _, (a, b, c, d), s, m = best
    return RoutedLaw(float(a), float(b), float(c), float(d), float(s), float(m))


def read_runs(path: str | Path) -> tuple[dict[str, np.ndarray], str]:
    """Runs of a results CSV and its kind: ``"sweep"`` (``params``, ``data`` (samples) and ``loss`` columns, as
    ``physml scaling sweep``'s ``results.csv``, optionally ``flops`` and ``experts``) or ``"epoch"`` (Epoch
    AI's extraction of the Chinchilla runs: ``Model Size``, ``Training FLOP``, ``loss``; D = C / 6N)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path}: no runs")
    columns = set(rows[0])
    column = lambda name: np.array([float(r[name]) for r in rows])  # noqa: E731
    if {"params", "data", "loss"} <= columns:
        runs = {"params": column("params"), "data": column("data"), "loss": column("loss")}
        runs |= {k: column(k) for k in ("flops", "experts") if k in columns}
        kind = "sweep"
    elif {"Model Size", "Training FLOP", "loss"} <= columns:
        n, c = column("Model Size"), column("Training FLOP")
        runs = {"params": n, "data": c / (6 * n), "loss": column("loss"), "flops": c}
        kind = "epoch"
    else:
        raise ValueError(f"{path}: needs columns params, data, loss (or Model Size, Training FLOP, loss); "
                         f"has {', '.join(sorted(columns))}")
    if not all(np.isfinite(v).all() and (v > 0).all() for v in runs.values()):
        raise ValueError(f"{path}: parameters, data, FLOPs and losses must be positive and finite")
    return runs, kind


def dense_runs(runs: dict[str, np.ndarray]) -> np.ndarray:
    """Which runs are dense (``experts`` 1, or no ``experts`` column)."""
    return runs["experts"] == 1 if "experts" in runs else np.ones(len(runs["loss"]), bool)


def fit_laws(runs: dict[str, np.ndarray], bootstrap: int = 200, compute: tuple[float, ...] = (1e18, 1e21, 5.76e23),
             seed: int = 0) -> tuple[dict, ChinchillaLaw]:
    """Every law fitted to ``runs`` (as :func:`read_runs` gives them) as a JSON-able dict, and the Chinchilla
    law: Approach 3 with bootstrap standard errors, the compute-optimal N*, D* (2.5-97.5 % bootstrap
    intervals) and samples per parameter at each budget, Kaplan's L(N) and L(D), and, where the runs have
    ``experts``, Clark et al.'s routed law. Chinchilla's and Kaplan's laws are fitted to the dense runs
    (``experts`` 1 or absent); Clark et al.'s, which has no data term, to the runs (dense and routed) of the
    training-set size with the most routed runs (the larger on a tie)."""
    experts, dense = runs.get("experts", np.ones_like(runs["loss"])), dense_runs(runs)
    if dense.sum() < 2:
        raise ValueError(f"the scaling fit needs dense runs (experts 1) of at least two sizes, got {int(dense.sum())}")
    n, d, loss = runs["params"][dense], runs["data"][dense], runs["loss"][dense]
    law = fit_chinchilla(n, d, loss)
    fits = bootstrap_chinchilla(n, d, loss, law, bootstrap, seed) if bootstrap else []
    names = ("E", "A", "B", "alpha", "beta")
    se = {k: float(np.std([getattr(f, k) for f in fits], ddof=1)) if len(fits) > 1 else float("nan") for k in names}
    budgets = np.asarray(compute, float)
    k = float(np.median(runs["flops"][dense] / (n * d))) if "flops" in runs else 6.0
    n_opt, d_opt = law.optimal(budgets, k)
    boot = np.array([f.optimal(budgets, k) for f in fits]) if fits else None   # [samples, 2, budgets]
    sizes, datas = np.unique(n), np.unique(d)
    kaplan_n = fit_power_law(sizes, [loss[n == s].min() for s in sizes]) if len(sizes) > 1 else None
    kaplan_d = fit_power_law(datas, [loss[d == s].min() for s in datas]) if len(datas) > 1 else None
    result = {"runs": len(n), "routed_runs": int((~dense).sum()), "flops_per_param_sample": k,
              "chinchilla": asdict(law), "standard_errors": se,
              "optimal": [{"compute": float(c), "params": float(nn), "data": float(dd),
                           "data_per_param": float(dd / nn),
                           **({"params_interval": np.percentile(boot[:, 0, i], [2.5, 97.5]).tolist(),
                               "data_interval": np.percentile(boot[:, 1, i], [2.5, 97.5]).tolist()}
                              if boot is not None else {})}
                          for i, (c, nn, dd) in enumerate(zip(budgets, n_opt, d_opt))],
              "kaplan": {"L(N)": kaplan_n, "L(D)": kaplan_d}}
    if len(datas) == 1:  # D terms not identifiable: the size law instead of the compute-optimal split
        boot_fits = bootstrap_size_law(n, loss, bootstrap, seed)
        spread = np.std(boot_fits, 0, ddof=1).tolist() if len(boot_fits) > 1 else [float("nan")] * 3
        result["optimal"] = []
        result["size_law"] = {"data": float(datas[0]), **dict(zip(("F", "A", "alpha"), fit_size_law(n, loss))),
                              "standard_errors": dict(zip(("F", "A", "alpha"), spread))}
    if not dense.all():
        sizes, counts = np.unique(runs["data"][~dense], return_counts=True)
        at = sizes[counts == counts.max()].max()
        keep = runs["data"] == at
        result["routed"] = asdict(fit_routed(runs["params"][keep], experts[keep], runs["loss"][keep])) | {
            "data": float(at), "runs": int(keep.sum())}
    return result, law


def fit(results: str, *, out: str | None = None, exclude_worst: int | None = None, bootstrap: int = 200,
        compute: tuple[float, ...] = (1e18, 1e21, 5.76e23), seed: int = 0) -> Path | None:
    """Fit the scaling laws to a results CSV and print them (Chinchilla's Approach 3 with bootstrap standard
    errors and the compute-optimal split, Kaplan's power laws, Clark et al.'s law for routed runs); with
    ``out``, write ``fit.json`` and ``frontier.png`` (iso-loss contours and the compute-optimal frontier).

    Args:
        results: CSV of runs (``physml scaling sweep``'s results.csv, or Epoch AI's Chinchilla extraction).
        out: folder for fit.json and frontier.png (default: print only).
        exclude_worst: leave out this many runs of highest loss first (default: 5 for Epoch AI's Chinchilla
            extraction, as their refit, whose worst runs are outliers of the extraction; 0 otherwise).
        bootstrap: resamplings of the runs for standard errors and intervals (0: none).
        compute: budgets C [FLOP] at which to report the compute-optimal split.
        seed: seeds the bootstrap.
    """
    runs, kind = read_runs(results)
    if exclude_worst is None:
        exclude_worst = EPOCH_EXCLUDED if kind == "epoch" else 0
    if not 0 <= exclude_worst < len(runs["loss"]) - 5:
        raise ValueError(f"--exclude-worst must leave at least 6 of the {len(runs['loss'])} runs, got {exclude_worst}")
    if exclude_worst:
        keep = np.argsort(runs["loss"])[:len(runs["loss"]) - exclude_worst]
        runs = {k: v[keep] for k, v in runs.items()}
    result, law = fit_laws(runs, bootstrap, compute, seed)
    result["excluded"] = exclude_worst
    print(format_fit(result))
    if out is None:
        return None
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "fit.json") as fh:
        json.dump(result, fh, indent=2)
    dense = dense_runs(runs)
    plot_frontier(law, runs["params"][dense], runs["data"][dense], runs["loss"][dense], out_dir / "frontier.png",
                  result["flops_per_param_sample"])
    return out_dir / "fit.json"


def plot_frontier(law: ChinchillaLaw, n: np.ndarray, d: np.ndarray, loss: np.ndarray, path: Path,
                  k: float = 6.0) -> None:
    """Iso-loss contours of the fitted law over compute C = k N D and parameters N, the runs coloured by
    loss, and the compute-optimal frontier N*(C)."""
    plt = pyplot()
    c = k * n * d
    cc, nn = np.meshgrid(np.geomspace(c.min() / 3, c.max() * 3, 200), np.geomspace(n.min() / 3, n.max() * 3, 200))
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    levels = np.quantile(loss, np.linspace(0.02, 0.98, 10))
    contours = ax.contour(cc, nn, law.loss(nn, cc / (k * nn)), levels=np.unique(levels), cmap="viridis",
                          linewidths=0.8)
    ax.clabel(contours, fontsize=7, fmt="%.3g")
    points = ax.scatter(c, n, c=loss, s=12, cmap="viridis", edgecolors="k", linewidths=0.3)
    fig.colorbar(points, ax=ax, label="final loss")
    ax.plot(cc[0], law.optimal(cc[0], k)[0], "r-", label="compute-optimal N*(C)")
    ax.set(xscale="log", yscale="log", xlabel=f"compute C = {k:.3g} N D [FLOP]", ylabel="parameters N",
           title=f"L = {law.E:.3g} + {law.A:.3g}/N^{law.alpha:.3f} + {law.B:.3g}/D^{law.beta:.3f}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def format_fit(result: dict) -> str:
    law, se = result["chinchilla"], result["standard_errors"]
    lines = [f"Chinchilla Approach 3 on {result['runs']} dense runs ({result['excluded']} of highest loss left out): "
             "L = E + A / N^alpha + B / D^beta",
             "  " + ", ".join(f"{k} = {law[k]:.4g} (SE {se[k]:.2g})" for k in ("E", "A", "B", "alpha", "beta")),
             f"compute-optimal split (C = {result['flops_per_param_sample']:.3g} N D):"]
    if "size_law" in result:
        law_n, se_n = result["size_law"], result["size_law"]["standard_errors"]
        lines[-1] = (f"one training-set size ({law_n['data']:.3g}): B and beta are not identifiable, no "
                     "compute-optimal split; L(N) = F + A / N^alpha (F = E + B / D^beta):\n  " +
                     ", ".join(f"{k} = {law_n[k]:.4g} (SE {se_n[k]:.2g})" for k in ("F", "A", "alpha")))
    for row in result["optimal"]:
        interval = lambda k: (f" [{row[k + '_interval'][0]:.3g}, {row[k + '_interval'][1]:.3g}]"  # noqa: E731
                              if k + "_interval" in row else "")
        lines.append(f"  C = {row['compute']:.3g} FLOP: N* = {row['params']:.3g}{interval('params')}, "
                     f"D* = {row['data']:.3g}{interval('data')}, D*/N* = {row['data_per_param']:.1f}")
    for key, fitted in result["kaplan"].items():
        if fitted is not None:
            lines.append(f"Kaplan {key} = (X_c / X)^a: X_c = {fitted[0]:.3g}, a = {fitted[1]:.3f}")
    if "routed" in result:
        r = result["routed"]
        lines.append(f"routed (Clark et al.): log L = {r['a']:.4f} log N + {r['b']:.4f} log E^ + {r['c']:.4f} "
                     f"log N log E^ + {r['d']:.4f} (E_start {r['e_start']:.3g}, E_max {r['e_max']:.3g}; "
                     f"{r['runs']} runs of {r['data']:.3g} samples)")
    return "\n".join(lines)


@dataclass(frozen=True)
class ScalingTask:
    """A domain's scaling sweep: ``configure(size, samples, experts, data_dir, run_dir) -> run`` gives the run
    (of ``recipe``) of a model of width ``size`` with ``experts`` experts per routed layer (1: dense), trained
    once over ``samples`` training samples of ``data_dir``."""

    recipe: Recipe
    configure: Callable[[int, int, int, str, str], Any]


RESULT_COLUMNS = ("run", "size", "experts", "params", "total_params", "data", "steps", "flops", "loss")


def active_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(active, total)`` parameters per token: modules with ``inactive_parameters()`` (routed layers: the
    experts a token does not use) say how many of theirs each token leaves idle."""
    total = sum(p.numel() for p in model.parameters())
    idle = sum(m.inactive_parameters() for m in model.modules() if hasattr(m, "inactive_parameters"))
    return total - idle, total


def step_flops(built: Built, batch_size: int) -> int:
    """FLOPs of one training step (forward and backward of the first ``batch_size`` training samples),
    counted by torch's ``FlopCounterMode`` (matrix products and attention; elementwise work is not counted)."""
    items = [built.train_set[i] for i in range(min(batch_size, len(built.train_set)))]
    batch = built.collate(items) if built.collate is not None else torch.utils.data.default_collate(items)
    built.model.train()
    with FlopCounterMode(display=False) as counter:
        loss, _ = built.loss(built.model, batch)
        loss.backward()
    built.model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def sweep(task: ScalingTask, sizes: tuple[int, ...], samples: tuple[int, ...], data: str, out: str,
          experts: tuple[int, ...] = (1,)) -> Path:
    """Train every (size, samples, experts) run of ``task`` into ``out/<run>/`` and collect ``out/results.csv``
    (:data:`RESULT_COLUMNS`: active and total parameters, samples, steps, FLOPs = counted FLOPs per step x
    steps, final validation loss; then the task's other final validation metrics). Runs already in it are
    skipped, so a stopped sweep continues where it stopped; each finished run is added under a file lock, so
    sweeps of disjoint grids may share one folder and run at the same time (one per core)."""
    out_dir = Path(out)
    results = out_dir / "results.csv"
    for size, n, e in itertools.product(sizes, samples, experts):
        name = f"w{size}_d{n}_e{e}"
        if name in {r["run"] for r in _read_results(results)}:
            continue
        run = task.configure(size, n, e, data, str(out_dir / name))
        run.trainer.resume = True  # a run stopped mid-way continues from its checkpoint
        seed_everything(run.trainer.seed)
        built = task.recipe.build(run)
        active, total = active_parameters(built.model)
        flops = step_flops(built, run.trainer.batch_size) * run.trainer.steps
        metrics = train(task.recipe, run)
        row = {"run": name, "size": size, "experts": e, "params": active, "total_params": total, "data": n,
               "steps": run.trainer.steps, "flops": flops, "loss": metrics["loss"]}
        _add_result(results, row | {k: v for k, v in metrics.items() if k not in row and k not in ("step", "split")})
    return results


def _read_results(results: Path) -> list[dict[str, str]]:
    if not results.exists():
        return []
    with results.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _add_result(results: Path, row: dict[str, Any]) -> None:
    """Rewrite ``results`` atomically with ``row`` added, holding a lock on ``results.lock`` meanwhile."""
    results.parent.mkdir(parents=True, exist_ok=True)
    with open(results.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [r for r in _read_results(results) if r["run"] != row["run"]] + [row]
        columns = list(RESULT_COLUMNS) + sorted({k for r in rows for k in r} - set(RESULT_COLUMNS))
        with atomic_open(results, "w", newline="") as fh:
            writer = csv.DictWriter(fh, columns)
            writer.writeheader()
            writer.writerows(rows)


def steps_for(samples: int, batch_size: int) -> int:
    """Optimiser steps of one pass over ``samples``."""
    return max(1, math.ceil(samples / batch_size))


def sweep_command(task: ScalingTask) -> Callable[..., Path]:
    """The command line of :func:`sweep` for one task."""
    def run_sweep(*, data: str, out: str, sizes: tuple[int, ...] = (16, 32, 48, 64, 96),
                  samples: tuple[int, ...] = (8000, 16000, 32000, 64000), experts: tuple[int, ...] = (1,)) -> Path:
        """Train a grid of model sizes x training samples (x experts) and collect results.csv (for ``physml
        scaling fit``); a stopped sweep continues where it stopped.

        Args:
            data: the task's data folder.
            out: folder for the runs and results.csv.
            sizes: model widths.
            samples: training samples seen (jets: each seen once; mgn: frames drawn from the training set).
            experts: experts per routed layer (1: dense).
        """
        return sweep(task, sizes, samples, data, out, experts)
    return run_sweep
