"""ROOT I/O: round trips through uproot, files we did not write, the dask path, and bad files."""
import math
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from datasets.root import DataConfig, RootWriter, iterate, lazy, pad, padded, read

CONFIG = {
    "treename": "jets",
    "branches": {"px": "part_px", "py": "part_py", "jet_pt": "jet_pt"},
    "new_variables": {"pt": "np.hypot(px, py)", "n": "ak.num(px)"},
    "selection": "jet_pt > 10",
    "inputs": {"particles": {"vars": ["pt", "px"], "length": 4, "pad_value": -1}},
}


def jets(n=200, seed=0, decimals=None):
    """Random jets; rounded values make LZ4 compress (incompressible baskets are stored raw, without checksum)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 9, n)
    values = rng.normal(size=(2, counts.sum()))
    px, py = (ak.unflatten(v if decimals is None else np.round(v, decimals), counts) for v in values)
    return {"part": ak.zip({"px": px, "py": py}), "jet_pt": rng.uniform(0, 20, n)}


def write(path, chunks):
    with RootWriter(path) as out:
        for chunk in chunks:
            out.extend("jets", chunk)
    return path


def test_round_trip_with_derived_variables_selection_and_chunks(tmp_path):
    a, b = jets(200, 0), jets(150, 1)
    path = write(tmp_path / "jets.root", [a, b])
    with uproot.open(path) as f:
        assert f["jets"].num_entries == 350 and "npart" in f["jets"]  # one shared counter
        assert isinstance(f.file.compression, uproot.LZ4)
    config = DataConfig.from_dict(CONFIG)
    chunks = list(iterate(path, config, step_size=64, progress=False))
    assert len(chunks) > 2
    got = ak.concatenate(chunks)
    px = ak.concatenate([a["part"].px, b["part"].px])
    py = ak.concatenate([a["part"].py, b["part"].py])
    keep = np.concatenate([a["jet_pt"], b["jet_pt"]]) > 10
    assert ak.all(ak.flatten(got.pt) == ak.flatten(np.hypot(px, py)[keep]))
    assert np.array_equal(ak.to_numpy(got.n), ak.to_numpy(ak.num(px[keep])))


def test_reads_a_tree_written_by_someone_else(tmp_path):
    """Plain uproot output with separate counters and extra branches: only the mapped names matter."""
    rng = np.random.default_rng(2)
    counts = rng.integers(1, 5, 30)
    with uproot.recreate(tmp_path / "other.root") as f:
        f.mktree("jets", {"part_px": ak.unflatten(rng.normal(size=counts.sum()), counts),
                     "part_py": ak.unflatten(rng.normal(size=counts.sum()), counts),
                     "jet_pt": rng.uniform(0, 20, 30), "unused": np.arange(30)})
    got = read(tmp_path / "other.root", DataConfig.from_dict(CONFIG))
    assert len(got) == int((f_pt := uproot.open(tmp_path / "other.root")["jets"]["jet_pt"].array(library="np") > 10)
                           .sum())
    assert f_pt.any()


EXTERNAL = Path(__file__).parents[2] / ".." / "shared" / "data" / "root-external"
HZZ = {"treename": "events",
       "branches": {"px": "Muon_Px", "py": "Muon_Py", "pz": "Muon_Pz", "e": "Muon_E", "q": "Muon_Charge",
                    "n": "NMuon"},
       "new_variables": {"pt": "np.hypot(px, py)",
                         "mass2": "(ak.sum(e[:, :2], axis=1) ** 2 - ak.sum(px[:, :2], axis=1) ** 2"
                                  " - ak.sum(py[:, :2], axis=1) ** 2 - ak.sum(pz[:, :2], axis=1) ** 2)"},
       "selection": "(n >= 2) & (ak.sum(q[:, :2], axis=1) == 0)"}


@pytest.mark.skipif(not EXTERNAL.is_dir(), reason="the external ROOT files (../shared/data/root-external) are absent")
@pytest.mark.parametrize("codec", ["zlib", "zstd", "lz4", "lzma", "uncompressed"])
def test_derived_values_of_a_foreign_file_match_a_brute_force_loop(codec):
    """uproot's HZZ sample, written by someone else's job, in five codecs: the selected events, the muon pT and
    the dimuon mass our data config derives equal a plain Python loop over the raw branches, and the mass of
    opposite-charge muon pairs peaks at the Z."""
    path = EXTERNAL / f"uproot-HZZ-{codec}.root"
    got = read(path, DataConfig.from_dict(HZZ))
    with uproot.open(path) as f:
        raw = f["events"].arrays(["NMuon", "Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E", "Muon_Charge"], library="np")
    pts, masses = [], []
    for n, px, py, pz, e, q in zip(*(raw[k] for k in ("NMuon", "Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E",
                                                      "Muon_Charge"))):
        if n >= 2 and q[0] + q[1] == 0:
            pts += [math.hypot(x, y) for x, y in zip(px, py)]
            masses.append((e[0] + e[1]) ** 2 - (px[0] + px[1]) ** 2 - (py[0] + py[1]) ** 2 - (pz[0] + pz[1]) ** 2)
    assert len(got) == len(masses) > 100
    assert np.allclose(ak.to_numpy(ak.flatten(got.pt)), pts, rtol=1e-6)
    assert np.allclose(ak.to_numpy(got.mass2), masses, rtol=1e-4, atol=1e-2)
    mass = np.sqrt(np.clip(ak.to_numpy(got.mass2), 0, None))
    assert 85 < np.median(mass[(mass > 60) & (mass < 120)]) < 95  # GeV: the Z


def test_padding_truncates_and_masks():
    values, mask = pad(ak.Array([[1.0, 2.0], [], [1.0, 2.0, 3.0, 4.0, 5.0]]), 3, pad_value=-1)
    assert values.tolist() == [[1, 2, -1], [-1, -1, -1], [1, 2, 3]]
    assert mask.tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    chunk = ak.zip({"pt": ak.Array([[3.0], [1.0, 2.0]]), "px": ak.Array([[1.0], [0.5, 0.5]])}, depth_limit=1)
    x, m = padded(chunk, DataConfig.from_dict(CONFIG))["particles"]
    assert x.shape == (2, 2, 4) and m.shape == (2, 4) and x[0, 0, 1] == -1


def test_the_dask_path_gives_the_same_records(tmp_path):
    pytest.importorskip("dask_awkward")
    path = write(tmp_path / "jets.root", [jets(300, 3)])
    config = DataConfig.from_dict({**CONFIG, "new_variables": {"pt": "np.hypot(px, py)"}})
    eager = read(path, config)
    computed = lazy(path, config, step_size=100).compute()
    assert ak.all(ak.flatten(computed.pt) == ak.flatten(eager.pt)) and len(computed) == len(eager)


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with RootWriter(tmp_path / "x.root") as out:
            out.extend("jets", jets(10))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, message", [
    ({"treename": "events"}, "no TTree 'events'; trees in the file: jets"),
    ({"branches": {"px": "part_pz", "py": "part_py", "jet_pt": "jet_pt"}}, "lacks branch"),
    ({"branches": {"px": "jet_pt"}, "new_variables": {}, "selection": None,
      "inputs": {"p": {"vars": ["px"], "length": 2}}}, "expected a jagged array"),
    ({"selection": "px[:, 20] > 0"}, "selection: cannot evaluate"),
])
def test_config_mismatches_name_the_file_and_the_expectation(tmp_path, change, message):
    path = write(tmp_path / "jets.root", [jets(20)])
    with pytest.raises(ValueError, match=message) as err:
        read(path, DataConfig.from_dict({**CONFIG, **change}))
    assert "jets.root" in str(err.value)


def test_missing_truncated_and_corrupted_files(tmp_path):
    config = DataConfig.from_dict(CONFIG)
    with pytest.raises(FileNotFoundError, match="absent.root"):
        read(tmp_path / "absent.root", config)
    path = write(tmp_path / "jets.root", [jets(2000, decimals=1)])
    data = path.read_bytes()
    (tmp_path / "truncated.root").write_bytes(data[: len(data) // 2])
    corrupted = bytearray(data)
    middle = len(data) // 2
    corrupted[middle: middle + 64] = bytes(b ^ 0xFF for b in data[middle: middle + 64])  # a compressed basket
    (tmp_path / "corrupted.root").write_bytes(bytes(corrupted))
    (tmp_path / "text.root").write_text("not a ROOT file")
    for name in ("truncated.root", "corrupted.root", "text.root"):
        with pytest.raises(ValueError, match=f"{name}.*(truncated or corrupted|no TTree|lacks branch)"):
            read(tmp_path / name, config)


def test_bad_configs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="needs 'treename' and 'branches'"):
        DataConfig.from_dict({"branches": ["a"]})
    with pytest.raises(ValueError, match="undefined variables q"):
        DataConfig.from_dict({**CONFIG, "inputs": {"p": {"vars": ["q"], "length": 2}}})
    (tmp_path / "c.yaml").write_text("treename: jets\nbranches: [jet_pt]\n")
    assert DataConfig.from_yaml(tmp_path / "c.yaml").branches == {"jet_pt": "jet_pt"}
