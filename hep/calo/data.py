"""The ``calo`` dataset: GFlash electron showers in CaloChallenge dataset-2 geometry and HDF5 format."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from datasets.registry import DatasetSpec, require_at_least
from datasets.showers import CaloGeometry, write_showers
from hep.calo.gflash import TUNGSTEN, simulate_showers

SPLITS = ("train", "test")
CHUNK = 500  # showers simulated at once (the multinomial probabilities take ~30 MB per 100 showers)


def log_uniform_energies(n: int, rng: np.random.Generator, low_mev: float = 1e3, high_mev: float = 1e6) -> np.ndarray:
    """Incident energies log-uniform in ``[low, high]`` MeV, as in CaloChallenge datasets 2 and 3."""
    return np.exp(rng.uniform(np.log(low_mev), np.log(high_mev), n))


def generate_calo(out_dir: str | Path, seed: int = 0, train: int = 10_000, test: int = 5_000,
                  min_energy_gev: float = 1.0, max_energy_gev: float = 1000.0, progress: bool = True) -> list[Path]:
    """Write ``train.h5`` and ``test.h5``: electrons with log-uniform energies between the given bounds,
    GFlash showers in tungsten (X0 3.5 mm, R_M 9.3 mm) voxelised as CaloChallenge dataset 2
    (45 layers x 16 alpha x 9 radial bins of 0.8 X0 x 0.5 R_M), energies in MeV."""
    require_at_least(train=(train, 1), test=(test, 1))
    if not 0 < min_energy_gev < max_energy_gev:
        raise ValueError(f"need 0 < min_energy_gev < max_energy_gev, got {min_energy_gev}, {max_energy_gev}")
    geometry = CaloGeometry()
    rng = np.random.default_rng(seed)
    counts = {"train": train, "test": test}
    written = []
    with tqdm(total=train + test, desc="calo showers", unit="shower", disable=not progress) as bar:
        for split in SPLITS:
            energies = log_uniform_energies(counts[split], rng, 1e3 * min_energy_gev, 1e3 * max_energy_gev)
            showers = []
            for start in range(0, len(energies), CHUNK):
                showers.append(simulate_showers(energies[start:start + CHUNK], geometry, TUNGSTEN, rng).deposits)
                bar.update(len(showers[-1]))
            metadata = {"generator": "GFlash (homogeneous, with sampling fluctuations)", "particle": "electron",
                        "material": asdict(TUNGSTEN), "seed": seed, "split": split,
                        "energy_range_mev": [1e3 * min_energy_gev, 1e3 * max_energy_gev]}
            path = Path(out_dir) / f"{split}.h5"
            written.append(write_showers(path, energies[:, None], np.concatenate(showers), geometry, metadata))
    return written


CALO = DatasetSpec(name="calo", domain="hep", schema="calo-showers",
                   description="GFlash electron showers, 1 GeV-1 TeV, CaloChallenge dataset-2 geometry and HDF5",
                   generate=generate_calo)
