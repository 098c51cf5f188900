"""What the hep domain offers the front door: its datasets, recipes, commands and demo step."""
from __future__ import annotations

from pathlib import Path

from hep.calo import data as calo_data
from hep.calo import evaluate as calo_evaluate
from hep.calo import flow as calo_flow
from hep.calo import model as calo_model
from hep.jets import SAMPLE_DIR
from hep.jets import evaluate as jets_evaluate
from hep import export
from hep.jets import generate as jets_generate
from hep.jets import tag as jets_tag
from hep.jets import train as jets_train
from hep.tracking import data as tracking_data
from hep.tracking import evaluate as tracking_evaluate
from hep.tracking import model as tracking_model
from hep.tracking import trackml
from datasets.registry import ImportSpec
from training.recipe import Command, train
from training.report import DemoRow

DATASETS = [calo_data.CALO, tracking_data.TRACKING, jets_generate.JETS]
IMPORTS = [ImportSpec("trackml", "hep", "tracking-events", "TrackML challenge events (CSV), barrel hits",
                      trackml.import_trackml)]
RECIPES = [calo_model.RECIPE, calo_flow.RECIPE, tracking_model.RECIPE, jets_train.RECIPE]
SCALING = {"jets": jets_train.SCALING}
PRETRAINED = jets_tag.SHIPPED
COMMANDS = [Command("evaluate", "score a trained model against its physics baselines",
                    {"calo": calo_evaluate.evaluate, "tracking": tracking_evaluate.evaluate,
                     "jets": jets_evaluate.evaluate}),
            Command("tag", "score the jets of your ROOT files with a trained tagger (friend tree of scores)",
                    jets_tag.tag),
            Command("export-onnx", "export a tagger or the tracking edge classifier to ONNX", export.export_onnx)]


def demo(out: Path, seed: int = 0) -> list[DemoRow]:
    """Tracking (GNN against Hough on simulated events), calorimeter showers (flow matching against GFlash) and
    jet tagging (ParticleNet-Lite against jet substructure on the committed jet sample)."""
    tracking_data.generate_tracking(out / "data" / "tracking", seed=seed, events=16, particles=500)
    run = tracking_model.TrackingRun(data_dir=str(out / "data" / "tracking"))
    run.trainer = run.trainer.for_demo(str(out / "tracking"), 300, seed)
    train(tracking_model.RECIPE, run)
    report = tracking_evaluate.evaluate(str(out / "tracking"))
    gnn, hough = report["gnn"], report["hough"]
    rows = [DemoRow("hep", "GNN tracking, 500 particles/event (300 steps)", "tracking efficiency, pT > 1 GeV "
                    "(double majority)", gnn["efficiency"], f"Hough {hough['efficiency']:.3f}",
                    output=str(out / "tracking" / "eval")),
            DemoRow("hep", "GNN tracking", "TrackML score", gnn["trackml_score"],
                    f"Hough {hough['trackml_score']:.3f}")]

    calo_data.generate_calo(out / "data" / "calo", seed=seed, train=4000, test=256)
    run = calo_flow.CaloFlowRun(data_dir=str(out / "data" / "calo"),
                                model=calo_flow.CaloFlowConfig(dim=64, depth=2, mlp_dim=128))
    run.trainer = run.trainer.for_demo(str(out / "calo"), 1000, seed, batch_size=128, warmup_steps=50)
    train(calo_flow.RECIPE, run)
    report = calo_evaluate.evaluate(str(out / "calo"), showers=256, samplers=("euler:16",), seed=seed,
                                    classifier_hidden=64, gflash_batches=(1, 100))
    floor, flow = report["gflash"], report["euler_16_energy_model"]
    rows += [DemoRow("hep", "calo shower flow matching + energy model (1000 steps, Euler 16)",
                     "classifier AUC, high-level features (0.5 = indistinguishable)", flow["auc_high"],
                     f"GFlash vs GFlash {floor['auc_high']:.3f}",
                     output=str(out / "calo" / "eval")),
             DemoRow("hep", "calo shower generation", "seconds per shower (batch 100)",
                     flow["seconds_per_shower_b100"], f"GFlash {floor['seconds_per_shower_b100']:.5f}", fmt=".4f")]

    run = jets_train.JetRun(data_dir=str(SAMPLE_DIR))
    run.trainer = run.trainer.for_demo(str(out / "jets" / "particlenet-lite"), 300, seed, warmup_steps=30)
    train(jets_train.RECIPE, run)
    report = jets_evaluate.evaluate([run.trainer.run_dir], out=str(out / "jets" / "eval"))
    tagger, cut = report["particlenet-lite"], report["cut"]
    return rows + [DemoRow("hep", "top tagging, ParticleNet-Lite (300 steps, 4800 jets)", "test AUC", tagger["auc"],
                           f"m_SD + tau32 cut {cut['auc']:.4f}", fmt=".4f", output=str(out / "jets" / "eval")),
                   DemoRow("hep", "top tagging", "1/eps_B at eps_S = 0.5", tagger["rejection_at_0.5"],
                           f"cut {cut['rejection_at_0.5']:.0f}", fmt=".0f")]
