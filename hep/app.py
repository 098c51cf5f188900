"""What the hep domain offers the front door: its datasets, recipes, commands and demo step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import uproot

from hep.calo import data as calo_data
from hep.calo import evaluate as calo_evaluate
from hep.calo import flow as calo_flow
from hep.calo import generate_showers
from hep.calo import model as calo_model
from hep.jets import SAMPLE_DIR
from hep.jets import evaluate as jets_evaluate
from hep import export
from hep.jets import generate as jets_generate
from hep.jets import inspect as jets_inspect
from hep.jets import tag as jets_tag
from hep.jets import train as jets_train
from hep.tracking import data as tracking_data
from hep.tracking import evaluate as tracking_evaluate
from hep.tracking import model as tracking_model
from hep.tracking import reconstruct as tracking_reconstruct
from hep.tracking import trackml
from datasets.registry import ImportSpec
from training.recipe import Command, train
from training.report import DemoRow

DATASETS = [calo_data.CALO, tracking_data.TRACKING, jets_generate.JETS]
IMPORTS = [ImportSpec("trackml", "hep", "tracking-events", "TrackML challenge events (CSV), barrel hits",
                      trackml.import_trackml)]
RECIPES = [calo_model.RECIPE, calo_flow.RECIPE, tracking_model.RECIPE, jets_train.RECIPE]
SCALING = {"jets": jets_train.SCALING}
PRETRAINED = {**jets_tag.SHIPPED, **tracking_reconstruct.SHIPPED, **generate_showers.SHIPPED}
COMMANDS = [Command("evaluate", "score a trained model against its physics baselines",
                    {"calo": calo_evaluate.evaluate, "tracking": tracking_evaluate.evaluate,
                     "jets": jets_evaluate.evaluate}),
            Command("tag", "score the jets of your ROOT files with a trained tagger (friend tree of scores)",
                    jets_tag.tag),
            Command("reconstruct", "reconstruct the tracks of your events with a trained GNN (track id per hit)",
                    tracking_reconstruct.reconstruct),
            Command("generate-showers", "generate calorimeter showers for given incident energies (CaloChallenge "
                    "HDF5)", generate_showers.generate_showers),
            Command("export-onnx", "export a tagger or the tracking edge classifier to ONNX", export.export_onnx),
            Command("inspect-tagger", "attention maps and head ablation of a transformer tagger",
                    jets_inspect.inspect_tagger)]


def demo(out: Path, seed: int = 0) -> list[DemoRow]:
    """The shipped models on fresh data against their baselines (the GNN tracker against a tuned Hough
    transform, the calorimeter flow against GFlash's own noise floor, ParticleNet-Lite against jet substructure
    on the committed jet sample), and one short training from scratch (the tagger, 300 steps) to show that
    training works."""
    tracker, flow, tagger = (shipped[name] for shipped, name in ((tracking_reconstruct.SHIPPED, "tracking"),
                                                                  (generate_showers.SHIPPED, "calo-flow"),
                                                                  (jets_tag.SHIPPED, "particlenet-lite")))
    tracking_data.generate_tracking(out / "data" / "tracking", seed=seed, events=16, particles=500, progress=False)
    report = tracking_evaluate.evaluate(str(tracker.folder), data=str(out / "data" / "tracking"),
                                        out=str(out / "tracking" / "eval"))
    gnn, hough = report["gnn"], report["hough"]
    rows = [DemoRow("hep", f"GNN tracking, 500 particles/event ({tracker.provenance()})", "TrackML score",
                    gnn["trackml_score"], f"Hough, tuned {hough['trackml_score']:.3f}",
                    output=str(out / "tracking" / "eval"), figure=str(out / "tracking" / "eval" / "event.png")),
            DemoRow("hep", "GNN tracking", "fake rate (lower is better)", gnn["fake_rate"],
                    f"Hough, tuned {hough['fake_rate']:.3f}"),
            DemoRow("hep", "GNN tracking", "tracking efficiency, pT > 1 GeV (double majority)", gnn["efficiency"],
                    f"Hough, tuned {hough['efficiency']:.3f}")]

    calo_data.generate_calo(out / "data" / "calo", seed=seed, train=1, test=256, progress=False)
    report = calo_evaluate.evaluate(str(flow.folder), data=str(out / "data" / "calo" / "test.h5"),
                                    out=str(out / "calo" / "eval"), showers=256, samplers=("euler:16",), seed=seed,
                                    classifier_hidden=64, gflash_batches=(1, 100))
    floor, generated = report["gflash"], report["euler_16_energy_model"]
    rows += [DemoRow("hep", f"calo shower flow matching + energy model, Euler 16 ({flow.provenance()})",
                     "classifier AUC, high-level features (0.5 = indistinguishable)", generated["auc_high"],
                     f"GFlash vs GFlash {floor['auc_high']:.3f}", output=str(out / "calo" / "eval"),
                     figure=str(out / "calo" / "eval" / "features.png")),
             DemoRow("hep", "calo shower generation", "seconds per shower (batch 100)",
                     generated["seconds_per_shower_b100"], f"GFlash {floor['seconds_per_shower_b100']:.5f}",
                     fmt=".4f")]

    sample = sorted(SAMPLE_DIR.glob("jets_*.root"))
    scored = uproot.open(jets_tag.tag([str(f) for f in sample], out=str(out / "jets" / "scores.root"),
                                      pretrained="particlenet-lite"))["scores"].arrays(library="np")
    labels, top = scored["label"], scored["score_top"]
    cut_scores = jets_evaluate.cut_score(jets_evaluate.substructure(sample)[0])
    shipped = jets_evaluate.summarise(labels, top, float(np.mean((top > 0.5) == labels)))
    cut = jets_evaluate.summarise(labels, cut_scores, float("nan"))
    jets_evaluate.roc_figure(out / "jets" / "roc_sample.png", labels, {
        "ParticleNet-Lite, pretrained": top, jets_evaluate.BASELINES["cut"]: cut_scores})
    run = jets_train.JetRun(data_dir=str(SAMPLE_DIR))
    run.trainer = run.trainer.for_demo(str(out / "jets" / "particlenet-lite-300-steps"), 300, seed, warmup_steps=30)
    train(jets_train.RECIPE, run)
    report = jets_evaluate.evaluate([run.trainer.run_dir], out=str(out / "jets" / "eval"))
    part = f"top tagging, ParticleNet-Lite ({tagger.provenance()}), the 6000 jets of hep/jets/sample"
    return rows + [DemoRow("hep", part, "AUC", shipped["auc"], f"m_SD + tau32 cut {cut['auc']:.4f}", fmt=".4f",
                           output=str(out / "jets"), figure=str(out / "jets" / "roc_sample.png")),
                   DemoRow("hep", "top tagging, ParticleNet-Lite (pretrained)", "1/eps_B at eps_S = 0.5",
                           shipped["rejection_at_0.5"], f"cut {cut['rejection_at_0.5']:.0f}", fmt=".0f"),
                   DemoRow("hep", "top tagging, ParticleNet-Lite trained here (300 steps, 4800 jets)",
                           "test AUC (600 test jets)", report["particlenet-lite-300-steps"]["auc"],
                           f"m_SD + tau32 cut {report['cut']['auc']:.4f}, boosted trees {report['gbdt']['auc']:.4f}",
                           fmt=".4f", output=str(out / "jets" / "eval"))]

