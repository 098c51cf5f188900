"""Calorimeter showers in the CaloChallenge 2022 HDF5 format (schema ``calo-showers``, docs/schemas.md).

Layout (one file per split)::

    /incident_energies  float32 [N, 1]   MeV
    /showers            float32 [N, V]   MeV deposited per voxel, V = layers x alpha bins x radial bins,
                                         flattened layer-major: index = (layer * n_alpha + alpha) * n_radial + r
    /                   attrs: schema, schema_version, geometry=<JSON>, metadata=<JSON>  (ours only)

Files from the CaloChallenge itself carry no attributes; :func:`read_showers` then checks them against the
geometry it is given (dataset 2's by default).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from datasets.hdf5 import atomic_hdf5, check_version, corruption_as_value_error, read_array

SCHEMA = "calo-showers"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class CaloGeometry:
    """A cylindrical voxelisation around the incident particle's axis (CaloChallenge dataset 2 by default):
    ``n_layers`` slabs of ``layer_depth`` radiation lengths, ``n_alpha`` azimuthal bins and ``n_radial``
    rings of ``radial_width`` Moliere radii each."""

    n_layers: int = 45
    n_alpha: int = 16
    n_radial: int = 9
    layer_depth: float = 0.8   # X0
    radial_width: float = 0.5  # Moliere radii

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.n_layers, self.n_alpha, self.n_radial

    @property
    def n_voxels(self) -> int:
        return self.n_layers * self.n_alpha * self.n_radial

    def layer_edges(self) -> np.ndarray:
        """Layer boundaries in X0, ``[n_layers + 1]``."""
        return np.arange(self.n_layers + 1) * self.layer_depth

    def radial_edges(self) -> np.ndarray:
        """Ring boundaries in Moliere radii, ``[n_radial + 1]``."""
        return np.arange(self.n_radial + 1) * self.radial_width


def write_showers(path: str | os.PathLike, incident_energies: np.ndarray, showers: np.ndarray,
                  geometry: CaloGeometry, metadata: dict | None = None) -> Path:
    """Write showers atomically after the same checks :func:`read_showers` applies."""
    energies, showers = _checked(np.asarray(incident_energies), np.asarray(showers), geometry, str(path))
    with atomic_hdf5(path) as f:
        f.attrs["schema"] = SCHEMA
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["geometry"] = json.dumps(asdict(geometry))
        f.attrs["metadata"] = json.dumps(metadata or {})
        f.create_dataset("incident_energies", data=energies.astype(np.float32)).attrs["units"] = "MeV"
        f.create_dataset("showers", data=showers.astype(np.float32), compression="gzip", fletcher32=True,
                         chunks=(min(len(showers), 256) or 1, geometry.n_voxels)).attrs["units"] = "MeV"
    return Path(path)


def read_geometry(path: str | os.PathLike, default: CaloGeometry = CaloGeometry()) -> CaloGeometry:
    """The geometry stored in one of our files, else ``default`` (CaloChallenge files store none)."""
    with corruption_as_value_error(path), h5py.File(path, "r") as f:
        stored = f.attrs.get("geometry")
        try:
            return CaloGeometry(**json.loads(str(stored))) if stored is not None else default
        except (TypeError, AttributeError) as err:
            raise ValueError(f"{path}: attribute 'geometry' is not a calorimeter geometry ({err})") from None


def read_showers(path: str | os.PathLike, geometry: CaloGeometry | None = None,
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(incident_energies [N, 1], showers [N, V])`` in MeV as float32, checked against the geometry
    (the file's own, else ``geometry``, else dataset 2's); ``limit`` reads only the first showers."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such shower file")
    geometry = geometry or read_geometry(path)
    with corruption_as_value_error(path), h5py.File(path, "r") as f:
        schema = f.attrs.get("schema", SCHEMA)  # CaloChallenge's own files carry no attributes
        if schema != SCHEMA:
            raise ValueError(f"{path}: attribute 'schema' is {schema!r}, expected {SCHEMA!r}")
        check_version(path, f.attrs.get("schema_version", SCHEMA_VERSION), SCHEMA_VERSION)
        missing = [k for k in ("incident_energies", "showers") if k not in f]
        if missing:
            raise ValueError(f"{path}: not a CaloChallenge shower file, missing dataset(s) {', '.join(missing)} "
                             "(expected incident_energies [N, 1] and showers [N, V] in MeV)")
        # values are checked below, with the geometry
        energies, showers = (read_array(path, f[key], repr(key), finite=False, rows=limit)
                             for key in ("incident_energies", "showers"))
        if len(f["incident_energies"]) != len(f["showers"]):
            raise ValueError(f"{path}: {len(f['incident_energies'])} incident energies but "
                             f"{len(f['showers'])} showers")
    return _checked(energies, showers, geometry, str(path))


def _checked(energies: np.ndarray, showers: np.ndarray, geometry: CaloGeometry,
             where: str) -> tuple[np.ndarray, np.ndarray]:
    energies = energies.reshape(-1, 1) if energies.ndim == 1 else energies
    if energies.ndim != 2 or energies.shape[1] != 1:
        raise ValueError(f"{where}: incident_energies must be [N, 1], got shape {energies.shape}")
    if showers.ndim != 2 or showers.shape[1] != geometry.n_voxels:
        raise ValueError(f"{where}: showers must be [N, {geometry.n_voxels}] for a "
                         f"{'x'.join(map(str, geometry.shape))} geometry, got shape {showers.shape}")
    if len(energies) != len(showers):
        raise ValueError(f"{where}: {len(energies)} incident energies but {len(showers)} showers")
    if not (np.isfinite(energies).all() and (energies > 0).all()):
        raise ValueError(f"{where}: incident energies must be positive and finite [MeV]")
    if not np.isfinite(showers).all() or (showers < 0).any():
        raise ValueError(f"{where}: voxel energies must be finite and non-negative [MeV]")
    return energies.astype(np.float32), showers.astype(np.float32)
