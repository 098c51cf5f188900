"""Jet generation (gen extra): substructure on hand-built prongs, physics of the generated jets, ROOT files."""
import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from datasets.root import DataConfig, RootWriter, read  # noqa: E402
from hep.jets.generate import generate_jets, substructure  # noqa: E402


def prongs(directions, per_prong=6, spread=0.005, pt=100.0, seed=0):
    """A jet of ``per_prong`` massless particles around each (eta, phi) direction."""
    rng = np.random.default_rng(seed)
    parts = []
    for eta, phi in directions:
        e = eta + rng.normal(0, spread, per_prong)
        p = phi + rng.normal(0, spread, per_prong)
        pts = np.full(per_prong, pt / per_prong)
        parts.append(np.column_stack([pts * np.cos(p), pts * np.sin(p), pts * np.sinh(e), pts * np.cosh(e)]))
    x = np.concatenate(parts)
    return {"px": x[:, 0], "py": x[:, 1], "pz": x[:, 2], "E": x[:, 3]}


def test_n_subjettiness_vanishes_from_the_number_of_prongs_on():
    configurations = [[(0.0, 0.0)], [(0.0, 0.0), (0.3, 0.2)], [(0.0, 0.0), (0.3, 0.2), (-0.2, 0.3)]]
    jets = ak.Array([prongs(c, seed=i) for i, c in enumerate(configurations)])
    jets = ak.zip({k: jets[k] for k in ("px", "py", "pz", "E")})
    taus = substructure(jets)
    for n_prongs, row in enumerate(zip(taus["jet_tau1"], taus["jet_tau2"], taus["jet_tau3"]), start=1):
        for n, tau in enumerate(row, start=1):
            if n >= n_prongs:
                assert tau < 0.02, (n_prongs, n, tau)
            else:
                assert tau > 0.1, (n_prongs, n, tau)


def test_generated_jets_have_top_and_qcd_physics_and_resume(tmp_path):
    files = generate_jets(tmp_path, seed=3, jets=120, chunk=60, progress=False)
    assert [f.name for f in files] == ["jets_0000.root", "jets_0001.root"]
    with uproot.open(files[0]) as f:
        a = f["jets"].arrays(library="ak")
    assert len(a) == 60 and ak.sum(a.label) == 30
    pt = ak.to_numpy(a.jet_pt)
    assert ((pt > 550) & (pt < 650)).all() and (np.abs(ak.to_numpy(a.jet_eta)) < 2).all()
    top, qcd = a[a.label == 1], a[a.label == 0]
    assert 150 < np.median(ak.to_numpy(top.jet_mass)) < 200 and np.median(ak.to_numpy(qcd.jet_mass)) < 130
    assert np.median(ak.to_numpy(top.jet_tau3 / top.jet_tau2)) < np.median(ak.to_numpy(qcd.jet_tau3 / qcd.jet_tau2))
    assert ak.all(a.jet_nparticles == ak.num(a.part_px)) and ak.max(a.jet_nparticles) <= 200
    # constituents sum to the jet
    assert np.allclose(ak.to_numpy(ak.sum(a.part_px, axis=1)), ak.to_numpy(a.jet_pt * np.cos(a.jet_phi)), rtol=1e-4,
                       atol=1e-2)
    # the second modality: impact parameters on charged constituents, heavy-flavour vertices with their counter
    charged = ak.flatten(a.part_charge) != 0
    assert ak.all((ak.flatten(a.part_d0err) > 0) == charged) and ak.all(ak.flatten(a.part_dzval)[~charged] == 0)
    assert ak.all(a.jet_nsv == ak.num(a.sv_x)) and ak.all(ak.flatten(a.sv_ntracks) >= 2)
    assert ak.all(ak.num(a.sv_x) <= ak.num(a.sv_flavour)) and set(ak.flatten(a.sv_flavour).tolist()) <= {4, 5}
    assert ak.all(ak.sum(a.part_charge != 0, axis=1) >= ak.sum(a.sv_ntracks, axis=1))
    b_vertex = ak.to_numpy(ak.any(a.sv_flavour == 5, axis=1))
    assert b_vertex[ak.to_numpy(a.label) == 1].mean() > 0.3 > 0.15 > b_vertex[ak.to_numpy(a.label) == 0].mean()
    before = files[0].stat().st_mtime_ns
    files[1].unlink()
    again = generate_jets(tmp_path, seed=3, jets=120, chunk=60, progress=False)
    assert again[0].stat().st_mtime_ns == before and again[1].exists()  # resumed: only the missing chunk
    serial = [uproot.open(f)["jets"].arrays(library="np") for f in files]
    for f in files:
        f.unlink()
    generate_jets(tmp_path, seed=3, jets=120, chunk=60, workers=2, progress=False)
    for f, expected in zip(files, serial):  # chunks are seeded by index: a process pool writes the same jets
        got = uproot.open(f)["jets"].arrays(library="np")
        assert all(np.array_equal(np.concatenate(got[key]) if got[key].dtype == object else got[key],
                                  np.concatenate(value) if value.dtype == object else value)
                   for key, value in expected.items())


def test_jet_file_round_trips_exactly_and_names_a_missing_branch(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 9, 25)
    branches = {"jet_pt": rng.uniform(550, 650, 25), "label": rng.integers(0, 2, 25).astype(np.int32),
                "part_px": ak.unflatten(rng.normal(size=counts.sum()), counts),
                "part_energy": ak.unflatten(rng.uniform(1, 50, counts.sum()), counts)}
    with RootWriter(tmp_path / "j.root") as out:
        out.extend("jets", branches, counter="jet_nparticles")
    back = read(tmp_path / "j.root", DataConfig.from_dict({"treename": "jets", "branches": list(branches)}))
    for key, value in branches.items():
        assert ak.all(ak.flatten(back[key], axis=None) == ak.flatten(ak.Array(value), axis=None))
    with pytest.raises(ValueError, match="j.root: tree 'jets' lacks branch\\(es\\) part_eta"):
        read(tmp_path / "j.root", DataConfig.from_dict({"treename": "jets", "branches": ["part_eta"]}))


def jet_pts(path: Path) -> np.ndarray:
    with uproot.open(path) as root:
        return root["jets"]["jet_pt"].array(library="np")


@pytest.mark.slow
def test_generate_train_and_evaluate_jet_commands(tmp_path, capsys):
    from physml.cli import main
    from training.report import read_report

    data, out = tmp_path / "jets", tmp_path / "eval"
    generate = ["data", "generate", "jets", "--out", str(data), "--jets", "240", "--chunk", "120", "--no-progress"]
    assert main(generate) == 0
    first, second = data / "jets_0000.root", data / "jets_0001.root"
    kept, lost = first.stat().st_mtime_ns, jet_pts(second)
    second.unlink()  # an interrupted generation: --resume writes only what is missing, the same jets
    assert main(generate + ["--resume", "--workers", "2"]) == 0
    assert first.stat().st_mtime_ns == kept and np.array_equal(jet_pts(second), lost)
    for model in ("pfn", "perceiver", "part-moe"):
        assert main(["hep", "train-jets", "--data", str(data), "--model", model, "--run-dir", str(tmp_path / model),
                     "--steps", "20", "--batch-size", "32", "--experts", "4", "--no-progress"]) == 0
    logged = [json.loads(line) for line in (tmp_path / "part-moe" / "metrics.jsonl").read_text().splitlines()]
    assert all(row["moe_max_over_mean"] >= 1 and 0 <= row["moe_dropped"] < 1 for row in logged if "loss" in row)
    assert sum(logged[-1][f"moe_load_{i}"] for i in range(4)) == pytest.approx(1)
    assert main(["hep", "evaluate-jets", *(str(tmp_path / m) for m in ("pfn", "perceiver", "part-moe")),
                 "--out", str(out)]) == 0
    report = read_report(out)
    assert [r.key for r in report.rows] == ["pfn", "perceiver", "part-moe", "cut", "gbdt"]
    assert all(0 <= r["auc"] <= 1 for r in report.rows)
    assert (out / "roc.png").stat().st_size > 0 and "1/eps_B" in capsys.readouterr().out
    assert main(["hep", "train-jets", "--data", str(tmp_path / "nothing"), "--no-progress"]) == 2


def test_committed_sample_holds_balanced_top_and_qcd_jets():
    from hep.jets import SAMPLE_DIR
    from hep.jets.evaluate import baselines, rejection
    from hep.jets.train import jet_files

    files = jet_files(SAMPLE_DIR)
    assert [f.name for f in files] == ["jets_0000.root", "jets_0001.root", "jets_0002.root"]
    for f in files:
        with uproot.open(f) as root:
            a = root["jets"].arrays(["jet_pt", "label"], library="np")
        assert len(a["label"]) == 2000 and a["label"].sum() == 1000
        assert ((a["jet_pt"] > 550) & (a["jet_pt"] < 650)).all()
    scores, labels = baselines(files, None)
    # substructure separates real top jets from QCD jets: the soft-drop mass window + tau32 cut
    assert rejection(labels, scores["cut"], 0.5) > 20
