"""Scaling-law fits: known constants from synthetic runs, Epoch AI's refit of the Chinchilla runs."""
import json
from pathlib import Path

import numpy as np
import pytest

from training.scaling import (ChinchillaLaw, _add_result, _read_results, bootstrap_chinchilla, effective_experts,
                              fit_chinchilla, fit_laws, fit_power_law, fit_routed, fit_size_law, read_runs)

CHINCHILLA = Path(__file__).parents[2] / ".." / "shared" / "data" / "chinchilla" / "svg_extracted_data.csv"
# Epoch AI's refit (Besiroglu et al. 2024) and its bootstrap standard errors
EPOCH = {"E": (1.8172, 0.03), "A": (482.01, 124.58), "B": (2085.43, 1293.23), "alpha": (0.3478, 0.02),
         "beta": (0.3658, 0.02)}


def synthetic_runs(law, noise=0.005, seed=0):
    rng = np.random.default_rng(seed)
    n, d = (x.ravel() for x in np.meshgrid(np.geomspace(1e6, 1e9, 7), np.geomspace(1e8, 1e11, 7)))
    return n, d, law.loss(n, d) * np.exp(noise * rng.standard_normal(n.shape))


def test_fit_recovers_the_constants_of_a_synthetic_law():
    truth = ChinchillaLaw(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
    exact = fit_chinchilla(*synthetic_runs(truth, noise=0.0))
    assert [getattr(exact, k) for k in "E A B alpha beta".split()] == pytest.approx([1.8, 400, 2000, 0.34, 0.37],
                                                                                   rel=1e-6)
    fitted = fit_chinchilla(*synthetic_runs(truth, noise=0.002))  # 0.2 % noise on the loss
    assert fitted.E == pytest.approx(truth.E, rel=0.02)
    assert fitted.alpha == pytest.approx(truth.alpha, abs=0.01)
    assert fitted.beta == pytest.approx(truth.beta, abs=0.01)
    assert np.log(fitted.A) == pytest.approx(np.log(truth.A), abs=0.2)
    assert np.log(fitted.B) == pytest.approx(np.log(truth.B), abs=0.2)


def test_compute_optimal_split_minimises_the_loss_at_fixed_compute():
    law = ChinchillaLaw(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
    n_opt, d_opt = law.optimal(np.array([1e20]))
    assert 6 * n_opt[0] * d_opt[0] == pytest.approx(1e20)
    n = np.geomspace(n_opt[0] / 10, n_opt[0] * 10, 2001)  # brute force along C = 6 N D
    assert n[np.argmin(law.loss(n, 1e20 / (6 * n)))] == pytest.approx(n_opt[0], rel=0.01)


@pytest.mark.skipif(not CHINCHILLA.exists(), reason="../shared/data/chinchilla is not on this machine")
def test_chinchilla_runs_give_epochs_refit_within_its_standard_errors():
    runs, kind = read_runs(CHINCHILLA)
    assert kind == "epoch" and len(runs["loss"]) == 245
    keep = np.argsort(runs["loss"])[:240]  # Epoch left out the 5 runs of highest loss
    n, d, loss = (runs[k][keep] for k in ("params", "data", "loss"))
    law = fit_chinchilla(n, d, loss)
    for name, (value, se) in EPOCH.items():
        assert abs(getattr(law, name) - value) < se, name
    n_opt, d_opt = law.optimal(np.array([5.76e23]))  # Chinchilla's own budget
    assert 15 < d_opt[0] / n_opt[0] < 25
    fits = bootstrap_chinchilla(n, d, loss, law, samples=30)
    for name, (_, se) in EPOCH.items():
        assert se / 2.5 < np.std([getattr(f, name) for f in fits]) < 2.5 * se, name


def test_power_law_and_routed_law_are_recovered_exactly_without_noise():
    n = np.geomspace(1e4, 1e7, 6)
    assert fit_power_law(n, (3e8 / n) ** 0.076) == pytest.approx((3e8, 0.076), rel=1e-9)
    experts = np.array([1, 2, 4, 8, 16, 64, 256])
    nn, ee = (x.ravel() for x in np.meshgrid(n, experts))
    e_hat = np.log(effective_experts(ee, 2.0, 300.0))
    loss = np.exp(-0.08 * np.log(nn) - 0.1 * e_hat + 0.004 * np.log(nn) * e_hat + 1.5)
    fitted = fit_routed(nn, ee, loss, e_start=np.array([1.5, 2.0, 3.0]), e_max=np.array([100.0, 300.0, 1000.0]))
    assert (fitted.e_start, fitted.e_max) == (2.0, 300.0)
    assert (fitted.a, fitted.b, fitted.c, fitted.d) == pytest.approx((-0.08, -0.1, 0.004, 1.5), abs=1e-9)
    assert effective_experts(np.array([1.0]), 2.0, 300.0)[0] == pytest.approx(2.0)  # E^(1) = E_start
    assert effective_experts(np.array([1e9]), 2.0, 300.0)[0] == pytest.approx(300.0, rel=1e-3)  # saturates


def test_fit_command_writes_the_fit_and_the_frontier(tmp_path, capsys):
    from physml.cli import main

    truth = ChinchillaLaw(E=0.3, A=40.0, B=60.0, alpha=0.5, beta=0.4)
    n, d, loss = synthetic_runs(truth, seed=1)
    lines = ["params,data,loss"] + [f"{a},{b},{c}" for a, b, c in zip(n, d, loss)]
    (tmp_path / "results.csv").write_text("\n".join(lines) + "\n")
    assert main(["scaling", "fit", str(tmp_path / "results.csv"), "--out", str(tmp_path / "fit"),
                 "--bootstrap", "5"]) == 0
    fitted = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert fitted["chinchilla"]["alpha"] == pytest.approx(0.5, abs=0.03) and fitted["excluded"] == 0
    assert (tmp_path / "fit" / "frontier.png").stat().st_size > 0
    assert "compute-optimal" in capsys.readouterr().out
    (tmp_path / "bad.csv").write_text("size,loss\n1,2\n")
    assert main(["scaling", "fit", str(tmp_path / "bad.csv")]) == 2
    assert "needs columns params, data, loss" in capsys.readouterr().err


def test_dense_laws_ignore_routed_runs_and_the_routed_law_takes_one_data_size():
    truth = ChinchillaLaw(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
    n, d, loss = synthetic_runs(truth, noise=0.0)
    sizes = np.geomspace(1e6, 1e9, 7)
    routed_n = np.concatenate([sizes, sizes, sizes[:2]])  # 14 routed runs at D = 1e10, 2 at D = 1e8
    routed_d = np.concatenate([np.full(14, 1e10), np.full(2, 1e8)])
    runs = {"params": np.concatenate([n, routed_n]), "data": np.concatenate([d, routed_d]),
            "loss": np.concatenate([loss, 0.5 * truth.loss(routed_n, routed_d)]),  # routed: far below the law
            "experts": np.concatenate([np.ones_like(n), np.repeat([4.0, 16.0, 4.0], [7, 7, 2])])}
    result, law = fit_laws(runs, bootstrap=0)
    assert law.alpha == pytest.approx(0.34, rel=1e-6) and result["runs"] == 49 and result["routed_runs"] == 16
    assert result["routed"]["data"] == 1e10 and result["routed"]["runs"] == 14 + 7  # and the 7 dense runs there


def test_results_are_merged_by_run_and_keep_every_column(tmp_path):
    results = tmp_path / "results.csv"
    _add_result(results, {"run": "a", "loss": 1.0})
    _add_result(results, {"run": "b", "loss": 2.0, "rollout_rmse": 0.5})  # another task's extra metric
    _add_result(results, {"run": "a", "loss": 0.5})  # a rerun replaces its row
    rows = {r["run"]: r for r in _read_results(results)}
    assert rows["a"]["loss"] == "0.5" and rows["a"]["rollout_rmse"] == "" and rows["b"]["rollout_rmse"] == "0.5"


def test_one_training_set_size_gives_the_size_law_and_no_compute_optimal_split():
    n = np.geomspace(2e4, 2e6, 6)
    loss = 1.0 + 300.0 / n ** 0.6
    assert fit_size_law(n, loss) == pytest.approx((1.0, 300.0, 0.6), rel=1e-6)
    result, _ = fit_laws({"params": n, "data": np.full(6, 1.2e4), "loss": loss}, bootstrap=10)
    assert result["optimal"] == [] and result["size_law"]["alpha"] == pytest.approx(0.6, rel=1e-6)
