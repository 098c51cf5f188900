"""TrackML events (the Kaggle challenge's CSV files) imported as ``tracking-events`` ROOT files.

An event is ``eventNNNNNNNNN-hits.csv`` (hit_id, x, y, z [mm], volume_id, layer_id, module_id),
``-truth.csv`` (hit_id, particle_id, ...; particle 0 is noise) and ``-particles.csv`` (particle_id, vx, vy, vz
[mm], px, py, pz [GeV], q, nhits); ``.csv.gz`` files read the same. The suite's tracker is TrackML's barrel,
so the barrel hits are kept, their (volume, layer) mapped to the layer index from the inside out: pixel
volume 8, layers 2-8 -> 0-3; short strips, volume 13 -> 4-7; long strips, volume 17, layers 2 and 4 -> 8, 9.
Endcap hits are dropped (counted in the summary); every particle of the event is kept, with ``nhits`` its
barrel hits. The events are split by order: the last tenth (at least one) each for test and validation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from datasets.atomic import atomic_folder
from datasets.root import RootWriter
from hep.tracking.data import CHUNK, event_branches
from hep.tracking.detector import Hits, Particles

BARREL = {(8, 2): 0, (8, 4): 1, (8, 6): 2, (8, 8): 3, (13, 2): 4, (13, 4): 5, (13, 6): 6, (13, 8): 7,
          (17, 2): 8, (17, 4): 9}
COLUMNS = {"hits": ("hit_id", "x", "y", "z", "volume_id", "layer_id"), "truth": ("hit_id", "particle_id"),
           "particles": ("particle_id", "vx", "vy", "vz", "px", "py", "pz", "q")}


def event_prefixes(folder: str | Path) -> list[Path]:
    """Every ``eventN`` of ``folder`` with a hits file, in name order."""
    found = sorted({p.with_name(p.name.split("-hits.csv")[0]) for p in Path(folder).glob("event*-hits.csv*")})
    if not found:
        raise FileNotFoundError(f"{folder}: no TrackML event files (event*-hits.csv)")
    return found


def _table(prefix: Path, kind: str) -> pd.DataFrame:
    candidates = [prefix.with_name(f"{prefix.name}-{kind}.csv{ext}") for ext in ("", ".gz")]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"{candidates[0]}: missing (each TrackML event needs hits, truth and particles)")
    try:
        table = pd.read_csv(path)
    except Exception as err:  # pandas' parser errors, bad gzip streams
        raise ValueError(f"{path}: not a readable CSV file ({type(err).__name__}: {err})") from None
    missing = [c for c in COLUMNS[kind] if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: lacks column(s) {', '.join(missing)} of TrackML's {kind} file")
    if not np.isfinite(table[list(COLUMNS[kind][1:])].to_numpy(np.float64)).all():
        raise ValueError(f"{path}: has NaN or infinite values")
    return table


def read_event(prefix: Path) -> tuple[Particles, Hits, int]:
    """One event's particles, its barrel hits (particle index per hit, -1 for noise) and the number of
    endcap hits dropped."""
    hits = _table(prefix, "hits").merge(_table(prefix, "truth")[["hit_id", "particle_id"]], on="hit_id",
                                        how="left", validate="one_to_one")
    if hits["particle_id"].isna().any():
        raise ValueError(f"{prefix}-truth.csv: has no truth for some hits of {prefix.name}-hits.csv")
    particles = _table(prefix, "particles")
    layer = np.array([BARREL.get(key, -1) for key in zip(hits["volume_id"], hits["layer_id"])], dtype=np.int64)
    barrel = hits[layer >= 0]
    layer = layer[layer >= 0]
    index = pd.Series(np.arange(len(particles)), index=particles["particle_id"].to_numpy())
    owner = barrel["particle_id"].to_numpy()
    particle = np.where(owner == 0, -1, index.reindex(owner).fillna(-1).to_numpy()).astype(np.int64)
    order = np.lexsort((layer, particle))
    positions = barrel[["x", "y", "z"]].to_numpy(np.float64)[order]
    return (Particles(particles[["vx", "vy", "vz"]].to_numpy(np.float64), particles[["px", "py", "pz"]].to_numpy(
                np.float64), particles["q"].to_numpy(np.float64)),
            Hits(positions, layer[order], particle[order]), len(hits) - len(barrel))


def import_trackml(src: str, out_dir: str, limit: int | None = None, progress: bool = True) -> list[Path]:
    """Import TrackML events (CSV, as the challenge distributes them) as ``train.root``, ``valid.root`` and
    ``test.root`` of the barrel tracker (``physml hep train-tracking --data OUT``).

    Args:
        src: folder with ``event*-hits.csv``, ``-truth.csv`` and ``-particles.csv`` (or ``.csv.gz``).
        out_dir: where the three ROOT files go.
        limit: import only the first events (None: all); at least 3.
        progress: show a progress bar.
    """
    prefixes = event_prefixes(src)[:limit]
    if len(prefixes) < 3:
        raise ValueError(f"{src}: {len(prefixes)} events; the train/valid/test split needs at least 3")
    held = max(1, len(prefixes) // 10)
    splits = {"train": prefixes[:-2 * held], "valid": prefixes[-2 * held:-held], "test": prefixes[-held:]}
    written, dropped = [], 0
    with atomic_folder(out_dir) as folder, tqdm(total=len(prefixes), desc="import TrackML", unit="event",
                                                 disable=not progress) as bar:
        for split, members in splits.items():
            with RootWriter(folder / f"{split}.root") as out:
                for start in range(0, len(members), CHUNK):
                    events = []
                    for prefix in members[start:start + CHUNK]:
                        particles, hits, endcap = read_event(prefix)
                        events.append((particles, hits))
                        dropped += endcap
                        bar.update(1)
                    hit_branches, particle_branches = event_branches(events, start)
                    out.extend("hits", hit_branches, counter="nhits")
                    out.extend("particles", particle_branches, counter="nparticles")
            written.append(Path(out_dir) / f"{split}.root")
    if progress:
        print(f"kept the barrel hits; dropped {dropped} endcap hits")
    return written
