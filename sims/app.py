"""What the sims domain offers the front door: its datasets, recipes, commands and demo step."""
from __future__ import annotations

from pathlib import Path

from datasets import deepmind
from datasets.registry import ImportSpec
from sims import data, evaluate, inspect, learned_forces, mesh_data, mesh_evaluate, train_gns, train_mgn
from sims.meshgraphnet import MeshGraphNetConfig
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
PRETRAINED = evaluate.SHIPPED
COMMANDS = [Command("evaluate", "score a trained GNS or MeshGraphNet against its baseline and solver",
                    evaluate.evaluate),
            Command("rollout", "roll a trained GNS or MeshGraphNet out and export it to HDF5", evaluate.rollout),
            Command("inspect-mgn", "step ablation and message inspection of a MeshGraphNet", inspect.inspect_mgn)]


def demo(out: Path, seed: int = 0) -> list[DemoRow]:
    """Learned forces on the soft-disk solver, a short GNS on SPH water and a short MeshGraphNet on the flag."""
    rows = []
    data.generate_soft_disks(out / "data" / "soft_disks", seed=seed, trajectories=8, frames=50, particles=120)
    forces = learned_forces.LearnedForcesRun(data_dir=str(out / "data" / "soft_disks"))
    forces.trainer = forces.trainer.for_demo(str(out / "learned_forces"), 1500, seed)
    metrics = train(learned_forces.RECIPE, forces)
    rows.append(DemoRow("sims", "learned forces (EPD) on soft-disk solver", "explained variance of acceleration, "
                        "held-out", metrics["explained_variance"], "0 (mean acceleration)",
                        output=str(out / "learned_forces")))

    data.generate_waterdrop(out / "data" / "waterdrop", seed=seed, trajectories=8, frames=100, spacing=0.03)
    gns = train_gns.GNSRun(data_dir=str(out / "data" / "waterdrop"))
    gns.trainer = gns.trainer.for_demo(str(out / "gns"), 1500, seed)
    train(train_gns.RECIPE, gns)
    report = evaluate.evaluate_gns(out / "gns", out / "data" / "waterdrop" / "test.h5", out / "gns" / "eval",
                                   max_trajectories=1, max_steps=60)
    solver = report["solver"]["seconds_per_frame"] if "solver" in report else float("nan")
    baseline = report["ballistic"]["rollout_mse"]
    rows += [DemoRow("sims", "GNS on SPH water drops (1,500 steps)", "rollout MSE, 60 steps [m^2]",
                     report["gns"]["rollout_mse"], f"ballistic + walls {baseline:.3g}",
                     output=str(out / "gns" / "eval"), figure=str(out / "gns" / "eval" / "rollout_000.png")),
             DemoRow("sims", "GNS vs SPH solver", "seconds per frame", report["gns"]["seconds_per_frame"],
                     f"solver {solver:.4f}", fmt=".4f")]

    mesh_data.generate_flag(out / "data" / "flag", seed=seed, trajectories=4, frames=60, nx=11, ny=7, progress=False)
    mgn = train_mgn.MGNRun(data_dir=str(out / "data" / "flag"), mgn=MeshGraphNetConfig(latent=32, n_steps=4))
    mgn.trainer = mgn.trainer.for_demo(str(out / "mgn_flag"), 400, seed)
    train(train_mgn.RECIPE, mgn)
    report = mesh_evaluate.evaluate(out / "mgn_flag", out / "data" / "flag" / "test.h5", out / "mgn_flag" / "eval",
                                    max_trajectories=1, max_steps=40)
    rows += [DemoRow("sims", "MeshGraphNet on the flag solver (400 steps)", "world-position RMSE over 10 steps [m]",
                     report["mgn"]["rmse_10"], f"constant velocity {report['frozen']['rmse_10']:.3g}",
                     output=str(out / "mgn_flag" / "eval"),
                     figure=str(out / "mgn_flag" / "eval" / "rollout_000.png")),
             DemoRow("sims", "MeshGraphNet vs flag solver", "seconds per frame", report["mgn"]["seconds_per_frame"],
                     f"solver {report['solver']['seconds_per_frame']:.4f}", fmt=".4f")]
    return rows
