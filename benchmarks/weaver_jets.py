"""ParticleNet-Lite, physml's against weaver-core's own, trained on identical jets for equal epochs in one run.

weaver-core (the framework CMS and most tagging papers train with) runs through its own command line in a
subprocess, on ROOT files this script writes from the same jets and split that ``physml hep train-jets``
uses (first 80% train, next 10% validate, last 10% test), with its own data config (the same seven particle
features, its automatic robust standardisation), its own ParticleNet-Lite (``weaver.nn.model.ParticleNet``,
k = 7, blocks of 32 and 64, fusion, FC 128), its defaults (Ranger at 5e-3, ``flat+decay``) and best-epoch
selection. physml runs ``physml hep train-jets --model particlenet-lite`` with the same batch size, epochs
and validation once per epoch. Both are scored on the same test jets; the AUC difference gets a paired
bootstrap range. Training speed is jets per second of training steps (weaver: its per-epoch "avg. speed";
physml: the ``train_seconds`` of its metric log), both on the same CPU threads.

    jets: <what> ours X, reference Y, ratio

Needs the ``peers`` extra (``pip install -e '.[peers]'``) and a jet folder, e.g.
``physml data generate jets --out runs/data/jets_weaver --jets 20000 --chunk 2000 --seed 77 --workers 2``.

Usage: python benchmarks/weaver_jets.py --data runs/data/jets_weaver [--epochs 6] [--batch 128] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
import uproot
import yaml

from datasets.root import DataConfig, read
from hep.classification import roc_auc
from hep.jets.evaluate import summarise
from hep.jets.inputs import DEFAULT_CONFIG, load_jets
from hep.jets.train import RECIPE, SPLIT, jet_files, split
from training.recipe import load

# weaver standardises each feature automatically (median, 16-84% half width, clip +-5), except d_eta and d_phi,
# which also serve as the first block's coordinates and stay as they are (as in weaver's own jet configs)
FEATURES = ["part_logpt", "part_logenergy", "part_logptrel", "part_logerel", ["part_deta", None],
            ["part_dphi", None], "part_deltaR"]

NETWORK = textwrap.dedent('''\
    """weaver-core's ParticleNet-Lite for two classes (written by physml's benchmarks/weaver_jets.py)."""
    import torch
    from weaver.nn.model.ParticleNet import ParticleNet


    class ParticleNetLite(torch.nn.Module):
        def __init__(self, dims, classes):
            super().__init__()
            self.net = ParticleNet(dims, classes, conv_params=[(7, (32, 32, 32)), (7, (64, 64, 64))],
                                   fc_params=[(128, 0.1)], use_fusion=True, use_fts_bn=True, use_counts=True)

        def forward(self, points, features, mask):
            return self.net(points, features, mask)


    def get_model(data_config, **kwargs):
        model = ParticleNetLite(len(data_config.input_dicts["pf_features"]), len(data_config.label_value))
        info = {"input_names": list(data_config.input_names),
                "input_shapes": {k: ((1,) + s[1:]) for k, s in data_config.input_shapes.items()},
                "output_names": ["softmax"],
                "dynamic_axes": {**{k: {0: "N", 2: "n_" + k.split("_")[0]} for k in data_config.input_names},
                                 "softmax": {0: "N"}}}
        return model, info


    def get_loss(data_config, **kwargs):
        return torch.nn.CrossEntropyLoss()
    ''')


def data_config() -> dict:
    """weaver's data config: physml's derived variables (particles.yaml), labels one-hot, auto standardisation."""
    ours = yaml.safe_load(DEFAULT_CONFIG.read_text())
    new_variables = {**ours["new_variables"], "part_mask": "ak.ones_like(part_energy)",
                     "is_qcd": "label == 0", "is_top": "label == 1"}
    return {"treename": "jets", "selection": None, "new_variables": new_variables,
            "preprocess": {"method": "auto", "data_fraction": 1.0},
            "inputs": {"pf_points": {"length": 128, "pad_mode": "constant",
                                     "vars": [["part_deta", None], ["part_dphi", None]]},
                       "pf_features": {"length": 128, "pad_mode": "constant", "vars": FEATURES},
                       "pf_mask": {"length": 128, "pad_mode": "constant", "vars": [["part_mask", None]]}},
            "labels": {"type": "simple", "value": ["is_qcd", "is_top"]},
            "observers": ["label"]}


def write_splits(files: list[Path], out: Path) -> dict[str, int]:
    """train/valid/test ROOT files holding exactly the jets of physml's split; returns their sizes."""
    branches = yaml.safe_load(DEFAULT_CONFIG.read_text())["branches"]
    jets = read(files, DataConfig.from_dict({"treename": "jets", "branches": branches}))
    n = len(jets)
    a, b = int(SPLIT[0] * n), int((SPLIT[0] + SPLIT[1]) * n)
    sizes = {}
    for name, part in (("train", jets[:a]), ("valid", jets[a:b]), ("test", jets[b:])):
        with uproot.recreate(out / f"{name}.root") as f:
            f["jets"] = {k: part[k] for k in branches}
        sizes[name] = len(part)
    return sizes


def run_weaver(folder: Path, epochs: int, batch: int, sizes: dict[str, int], threads: int
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """Train and test weaver-core; its test labels, top scores and mean training jets/s."""
    folder = folder.resolve()
    (folder / "jets.yaml").write_text(yaml.safe_dump(data_config(), sort_keys=False))
    (folder / "particlenet_lite.py").write_text(NETWORK)
    command = [shutil.which("weaver") or "weaver",
               "--data-train", str(folder / "train.root"), "--data-val", str(folder / "valid.root"),
               "--data-test", str(folder / "test.root"), "--data-config", str(folder / "jets.yaml"),
               "--network-config", str(folder / "particlenet_lite.py"),
               "--model-prefix", str(folder / "model" / "net"), "--num-epochs", str(epochs),
               "--batch-size", str(batch), "--steps-per-epoch", str(sizes["train"] // batch),
               "--steps-per-epoch-val", str(-(-sizes["valid"] // batch)), "--start-lr", "5e-3",
               "--optimizer", "ranger", "--gpus", "",
               "--num-workers", "0", "--in-memory", "--fetch-step", "1", "--log", str(folder / "weaver.log"),
               "--predict-output", str(folder / "predict.root")]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"weaver failed ({result.returncode}):\n{result.stderr[-3000:]}")
    log = (folder / "weaver.log").read_text()
    # each epoch logs "Epoch #i training", then the training loop's speed; validation and test follow
    speeds = [float(m.group(1)) for m in re.finditer(
        r"Epoch #\d+ training.*?avg\. speed ([\d.]+) entries/s", log, flags=re.S)]
    with uproot.open(folder / "predict.root") as f:
        tree = f[f.keys()[0]]
        labels = tree["label"].array(library="np").astype(int)
        scores = tree["score_is_top"].array(library="np")
    return labels, scores, float(np.mean(speeds))


def run_physml(data: Path, folder: Path, epochs: int, batch: int, n_train: int, threads: int
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """Train physml's ParticleNet-Lite through its command line; its test labels, top scores and jets/s."""
    steps_per_epoch = n_train // batch
    command = [sys.executable, "-m", "physml.cli", "hep", "train-jets", "--data", str(data), "--run-dir",
               str(folder), "--model", "particlenet-lite", "--steps", str(epochs * steps_per_epoch),
               "--batch-size", str(batch), "--eval-every", str(steps_per_epoch), "--overwrite", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"physml failed ({result.returncode}):\n{result.stderr[-3000:]}")
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if r["split"] == "train"][-1]
    model, _ = load(folder, [RECIPE])
    test = split(load_jets(jet_files(data)))["test"]
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(test[i:i + 256].trimmed()), 1)[:, 1]
                           for i in range(0, len(test), 256)]).numpy()
    return test.label.numpy(), probs, last["step"] * batch / last["train_seconds"]


def paired_auc_range(labels: np.ndarray, ours: np.ndarray, reference: np.ndarray, draws: int = 1000,
                     seed: int = 0) -> tuple[float, float]:
    """95% range of AUC(ours) - AUC(reference) over bootstrap resamples of the test jets."""
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(draws):
        pick = rng.integers(0, len(labels), len(labels))
        differences.append(roc_auc(labels[pick], ours[pick]) - roc_auc(labels[pick], reference[pick]))
    return tuple(np.percentile(differences, [2.5, 97.5]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of jets_*.root (physml data generate jets)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench/weaver_jets")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "weaver").mkdir(parents=True, exist_ok=True)
    sizes = write_splits(jet_files(args.data), out / "weaver")
    print(f"jets: {sizes['train']} train, {sizes['valid']} validation, {sizes['test']} test; "
          f"{args.epochs} epochs of batch {args.batch}, {args.threads} threads", flush=True)
    start = time.perf_counter()
    ref_labels, ref_scores, ref_speed = run_weaver(out / "weaver", args.epochs, args.batch, sizes, args.threads)
    ref_minutes = (time.perf_counter() - start) / 60
    start = time.perf_counter()
    labels, scores, speed = run_physml(Path(args.data), out / "physml", args.epochs, args.batch, sizes["train"],
                                       args.threads)
    minutes = (time.perf_counter() - start) / 60
    ours, reference = summarise(labels, scores, float(np.mean((scores > 0.5) == labels))), summarise(
        ref_labels, ref_scores, float(np.mean((ref_scores > 0.5) == ref_labels)))
    results = {"sizes": sizes, "epochs": args.epochs, "batch": args.batch, "physml": {**ours, "jets_per_s": speed,
               "minutes": minutes}, "weaver": {**reference, "jets_per_s": ref_speed, "minutes": ref_minutes}}
    for key, what in (("accuracy", "accuracy"), ("auc", "AUC"), ("rejection_at_0.5", "1/eps_B at eps_S = 0.5")):
        print(f"jets: ParticleNet-Lite {what} ours {ours[key]:.4f}, reference (weaver-core) {reference[key]:.4f}, "
              f"ratio {ours[key] / reference[key]:.4f}")
    if np.array_equal(labels, ref_labels):  # weaver kept the file order: the jets pair up
        lo, hi = paired_auc_range(labels, scores, ref_scores)
        results["auc_difference_95"] = [lo, hi]
        print(f"jets: AUC difference ours - reference {ours['auc'] - reference['auc']:+.4f} "
              f"(paired bootstrap 95%: {lo:+.4f} to {hi:+.4f})")
    print(f"jets: training jets/s ours {speed:.0f}, reference {ref_speed:.0f}, ratio {speed / ref_speed:.2f}")
    print(f"jets: wall minutes (training, validation, test) ours {minutes:.1f}, reference {ref_minutes:.1f}")
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
