"""What the sims domain offers the front door: its datasets, recipes, commands and demo step."""
from __future__ import annotations

import math
from pathlib import Path

from datasets import deepmind
from datasets.registry import ImportSpec
from sims import data, evaluate, inspect, learned_forces, mesh_data, mesh_evaluate, train_gns, train_mgn
from training.recipe import Command, train
from training.report import DemoRow

DATASETS = [data.SOFT_DISKS, data.WATERDROP, data.DAMBREAK, mesh_data.CYLINDER_FLOW, mesh_data.FLAG]
IMPORTS = [ImportSpec("learning-to-simulate", "sims", "particle-trajectories",
                      "DeepMind learning_to_simulate TFRecords (WaterDrop, Sand, Goop, ...)",
                      deepmind.import_learning_to_simulate),
           ImportSpec("meshgraphnets", "sims", "mesh-trajectories",
                      "DeepMind MeshGraphNets TFRecords (cylinder_flow, flag_simple, ...)",
                      deepmind.import_meshgraphnets)]
RECIPES = [learned_forces.RECIPE, train_gns.RECIPE, train_mgn.RECIPE]
SCALING = {"mgn": train_mgn.SCALING}
PRETRAINED = evaluate.SHIPPED
COMMANDS = [Command("evaluate", "score a trained GNS or MeshGraphNet against its baseline and solver",
                    evaluate.evaluate),
            Command("rollout", "roll a trained GNS or MeshGraphNet out and export it to HDF5", evaluate.rollout),
            Command("inspect", "step ablation and message inspection of a MeshGraphNet or GNS run", inspect.inspect)]


def demo(out: Path, seed: int = 0) -> list[DemoRow]:
    """The shipped GNS and flag and cylinder-flow MeshGraphNets on fresh trajectories of their reference data
    (new seeds) against their baselines and solvers, and one short training from scratch (learned forces on
    the soft-disk solver) to show that training works."""
    gns, flag, cylinder = PRETRAINED["gns-waterdrop-50ms"], PRETRAINED["mgn-flag"], PRETRAINED["mgn-cylinder"]
    data.generate_soft_disks(out / "data" / "soft_disks", seed=seed, trajectories=8, frames=50, particles=120)
    forces = learned_forces.LearnedForcesRun(data_dir=str(out / "data" / "soft_disks"))
    forces.trainer = forces.trainer.for_demo(str(out / "learned_forces"), 1500, seed)
    metrics = train(learned_forces.RECIPE, forces)
    rows = [DemoRow("sims", "learned forces (EPD) on soft-disk solver, trained here (1,500 steps)",
                    "explained variance of acceleration, held-out", metrics["explained_variance"],
                    "0 (mean acceleration)", output=str(out / "learned_forces"))]

    # the scenes of each card's check (seeds the shipped models never saw), shifted by the demo's seed
    check = gns.check
    test = evaluate.check_scenes(gns.name, out / "data" / "waterdrop", seed)
    report = evaluate.evaluate_gns(gns.folder, test, out / "gns" / "eval", max_trajectories=check["trajectories"])
    learned, ballistic, solver = (report[key] for key in ("gns", "ballistic", "solver_equal_cost"))
    coarse_sph = f"{solver['rollout_mse']:.3g}" if math.isfinite(solver["rollout_mse"]) else \
        f"diverged in {solver['diverged']:.0f} of {check['trajectories']}"  # a report's NaN: every one diverged
    rows += [DemoRow("sims", f"GNS on SPH water drops, {check['frame_dt']} s frames ({gns.provenance()})",
                     "rollout MSE [m^2]", learned["rollout_mse"], f"ballistic + walls "
                     f"{ballistic['rollout_mse']:.3g}, SPH at the GNS's cost {coarse_sph}",
                     output=str(out / "gns" / "eval"), figure=str(out / "gns" / "eval" / "rollout_000.png")),
             DemoRow("sims", "GNS vs SPH solver (its own CFL steps)", "seconds per frame",
                     learned["seconds_per_frame"], f"solver {report['solver']['seconds_per_frame']:.4f}",
                     fmt=".4f")]

    check = flag.check
    test = evaluate.check_scenes(flag.name, out / "data" / "flag", seed)
    report = mesh_evaluate.evaluate(flag.folder, test, out / "mgn_flag" / "eval",
                                    max_trajectories=check["trajectories"])
    rows += [DemoRow("sims", f"MeshGraphNet on the flag solver ({flag.provenance()})",
                     "world-position RMSE over 50 steps [m]", report["mgn"]["rmse_50"],
                     f"constant velocity {report['frozen']['rmse_50']:.3g}", output=str(out / "mgn_flag" / "eval"),
                     figure=str(out / "mgn_flag" / "eval" / "rollout_000.png")),
             DemoRow("sims", "MeshGraphNet vs flag solver", "seconds per frame", report["mgn"]["seconds_per_frame"],
                     f"solver {report['solver']['seconds_per_frame']:.4f}", fmt=".4f")]

    check = cylinder.check
    test = evaluate.check_scenes(cylinder.name, out / "data" / "cylinder_flow", seed)
    report = mesh_evaluate.evaluate(cylinder.folder, test, out / "mgn_cylinder" / "eval",
                                    max_trajectories=check["trajectories"])
    rows.append(DemoRow("sims", f"MeshGraphNet on cylinder flow ({cylinder.provenance()})",
                        "velocity RMSE over 50 steps [m/s]", report["mgn"]["rmse_50"],
                        f"frozen field {report['frozen']['rmse_50']:.3g} (per frame: model "
                        f"{report['mgn']['seconds_per_frame']:.3f} s, FEM solver "
                        f"{report['solver']['seconds_per_frame']:.3f} s)",
                        output=str(out / "mgn_cylinder" / "eval"),
                        figure=str(out / "mgn_cylinder" / "eval" / "rollout_000.png")))
    return rows

