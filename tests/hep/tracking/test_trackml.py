"""TrackML CSV events: files in the challenge's layout (64-bit particle ids, noise as particle 0, endcap hits)
import as tracking events hit for hit; bad files fail with the file named; the tracker trains on the import."""
import numpy as np
import pandas as pd
import pytest
import uproot

from hep.tracking.detector import Detector, sample_particles, simulate_event
from hep.tracking.trackml import BARREL, import_trackml
from physml.cli import main

LAYER_IDS = {layer: key for key, layer in BARREL.items()}


def write_events(folder, events=4, particles=60, seed=0, gzip_last=False):
    """TrackML-format events from the barrel simulation, plus endcap hits (volume 7) to be dropped; returns
    per event the barrel hits and the particle ids in file order."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    detector = Detector(noise_per_layer=2.0)
    truth_events = []
    for e in range(events):
        parts = sample_particles(particles, rng)
        hits = simulate_event(parts, detector, rng)
        ids = rng.choice(2**62, len(parts.charge), replace=False).astype(np.uint64) + 1
        owner = np.where(hits.particle_id >= 0, ids[np.maximum(hits.particle_id, 0)], 0).astype(np.uint64)
        n_endcap = 15
        volume = np.concatenate([[LAYER_IDS[k][0] for k in hits.layer], np.full(n_endcap, 7)])
        layer_id = np.concatenate([[LAYER_IDS[k][1] for k in hits.layer], np.full(n_endcap, 2)])
        position = np.concatenate([hits.position, rng.normal(0, 300, (n_endcap, 3)) + [0, 0, 1500]])
        order = rng.permutation(len(volume))  # files are not sorted by particle
        hit_id = np.arange(1, len(volume) + 1)
        prefix = folder / f"event{1000 + e:09d}"
        suffix = ".csv.gz" if gzip_last and e == events - 1 else ".csv"
        pd.DataFrame({"hit_id": hit_id, "x": position[order, 0], "y": position[order, 1], "z": position[order, 2],
                      "volume_id": volume[order], "layer_id": layer_id[order], "module_id": 1}).to_csv(
            f"{prefix}-hits{suffix}", index=False)
        pd.DataFrame({"hit_id": hit_id, "particle_id": np.concatenate([owner, np.zeros(n_endcap, np.uint64)])[order],
                      "tx": 0.0, "ty": 0.0, "tz": 0.0, "tpx": 0.0, "tpy": 0.0, "tpz": 0.0, "weight": 0.0}).to_csv(
            f"{prefix}-truth{suffix}", index=False)
        pd.DataFrame({"particle_id": ids, "vx": parts.vertex[:, 0], "vy": parts.vertex[:, 1],
                      "vz": parts.vertex[:, 2], "px": parts.momentum[:, 0], "py": parts.momentum[:, 1],
                      "pz": parts.momentum[:, 2], "q": parts.charge.astype(int), "nhits": 0}).to_csv(
            f"{prefix}-particles{suffix}", index=False)
        truth_events.append((hits, parts))
    return truth_events


def test_trackml_events_import_hit_for_hit(tmp_path):
    truth = write_events(tmp_path / "trackml", events=4, gzip_last=True)
    import_trackml(str(tmp_path / "trackml"), str(tmp_path / "out"), progress=False)
    read = []
    for split in ("train", "valid", "test"):
        with uproot.open(tmp_path / "out" / f"{split}.root") as f:
            read += list(zip(f["hits"].arrays(library="ak"), f["particles"].arrays(library="ak")))
    assert len(read) == 4
    for (hits, parts), (h, p) in zip(truth, read):
        assert len(h["x"]) == len(hits.layer)  # every barrel hit, no endcap hit
        got = np.column_stack([np.asarray(h[k], dtype=np.float64) for k in ("layer", "particle_id", "x", "z")])
        want = np.column_stack([hits.layer, hits.particle_id, hits.position[:, 0], hits.position[:, 2]])
        got, want = (a[np.lexsort(a[:, ::-1].T)] for a in (got, want))
        assert np.array_equal(got[:, :2], want[:, :2])  # same layer, same particle index (noise -1)
        assert np.allclose(got[:, 2:], want[:, 2:], atol=1e-3)  # same position (float32 in ROOT)
        assert np.allclose(np.asarray(p["pt"]), parts.pt, rtol=1e-6)
        assert np.array_equal(np.asarray(p["nhits"]), np.bincount(hits.particle_id[hits.particle_id >= 0],
                                                                   minlength=len(parts.charge)))


def test_bad_trackml_files_fail_with_the_file_named(tmp_path):
    write_events(tmp_path / "trackml", events=3)
    truth = tmp_path / "trackml" / "event000001001-truth.csv"
    truth.write_text("hit_id,weight\n1,0.5\n")
    with pytest.raises(ValueError, match="event000001001-truth.csv.*particle_id"):
        import_trackml(str(tmp_path / "trackml"), str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out*"))  # no partial output
    with pytest.raises(ValueError, match="at least 3"):
        import_trackml(str(tmp_path / "trackml"), str(tmp_path / "out2"), limit=2, progress=False)


@pytest.mark.slow
def test_tracker_trains_on_imported_trackml_events(tmp_path):
    write_events(tmp_path / "trackml", events=5, particles=80)
    assert main(["data", "import", "trackml", str(tmp_path / "trackml"), "--out", str(tmp_path / "data"),
                 "--no-progress"]) == 0
    assert main(["hep", "train-tracking", "--data", str(tmp_path / "data"), "--run-dir", str(tmp_path / "run"),
                 "--steps", "5", "--latent", "16", "--message-passing-steps", "2", "--no-progress"]) == 0
