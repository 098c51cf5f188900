"""Radar precipitation on xarray: the ``radar`` schema, its checks, writers (NetCDF, Zarr) and readers.

The schema follows pysteps' xarray data model. A file holds one regular series of composite images:

- dims ``(time, y, x)``; ``time`` is datetime64 with ``stepsize`` (seconds) in its attributes, ``y`` and ``x``
  are projection coordinates in km (pixel centres, ``y`` ascending, the first row is the south edge) with
  ``stepsize`` (km);
- ``precip_intensity`` ``[time, y, x]`` float32 in mm/h, with ``units``, ``threshold`` (the smallest rain rate
  the radar reports, mm/h), ``zerovalue`` (the value of "no rain", mm/h), ``accutime`` (minutes) and
  ``transform`` (``"none"``) attributes; no-data pixels are NaN there and only there;
- ``valid`` ``[y, x]`` uint8: 1 where the radar measures, 0 outside its coverage (no data, not dry);
- Dataset attributes ``schema = "radar"``, ``schema_version``, ``projection`` (a PROJ string) and ``source``.

Files are NetCDF-4 (``.nc``, written with h5netcdf) or Zarr stores (``.zarr``); both open lazily with dask
chunks of whole images. Real archives enter through :func:`read_odim` (ODIM HDF5 via pysteps' importer).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from datasets.atomic import atomic_path
from datasets.hdf5 import check_version, corruption_as_value_error

SCHEMA_VERSION = 1
VARIABLE = "precip_intensity"
UNITS = "mm/h"
_UNIT_ALIASES = {"mm/h": 1.0, "mm h-1": 1.0, "mm hr-1": 1.0, "mm/hr": 1.0, "kg m-2 h-1": 1.0,
                 "mm/min": 60.0, "mm min-1": 60.0, "m/s": 3.6e6, "m s-1": 3.6e6, "kg m-2 s-1": 3600.0}
SUFFIXES = (".nc", ".zarr")


def radar_dataset(precip: np.ndarray, start: np.datetime64 | str, step_minutes: float = 5.0,
                  pixel_km: float = 1.0, valid: np.ndarray | None = None, threshold: float = 0.1,
                  origin_km: tuple[float, float] = (0.0, 0.0),
                  projection: str = "+proj=aeqd +lat_0=0 +lon_0=0 +units=km", source: str = "",
                  attrs: dict | None = None) -> xr.Dataset:
    """Wrap rain rates ``[T, Y, X]`` (mm/h, NaN for no data) as a ``radar`` schema Dataset.

    ``valid`` ``[Y, X]`` marks the radar coverage (default: everywhere the first frame is not NaN);
    ``origin_km`` is the ``(y, x)`` projection coordinate of the south-west grid corner.
    """
    precip = np.asarray(precip, dtype=np.float32)
    if precip.ndim != 3:
        raise ValueError(f"precip must be [time, y, x], got shape {precip.shape}")
    n_t, n_y, n_x = precip.shape
    valid = np.isfinite(precip[0]) if valid is None else np.asarray(valid, dtype=bool)
    step = np.timedelta64(int(round(step_minutes * 60)), "s")
    time = np.datetime64(start, "s") + step * np.arange(n_t)
    coords = {"time": ("time", time, {"stepsize": int(step / np.timedelta64(1, "s")), "long_name": "valid time"}),
              "y": ("y", origin_km[0] + (np.arange(n_y) + 0.5) * pixel_km, {"units": "km", "stepsize": pixel_km,
                                                             "standard_name": "projection_y_coordinate"}),
              "x": ("x", origin_km[1] + (np.arange(n_x) + 0.5) * pixel_km, {"units": "km", "stepsize": pixel_km,
                                                             "standard_name": "projection_x_coordinate"})}
    data_vars = {VARIABLE: (("time", "y", "x"), precip,
                            {"units": UNITS, "threshold": threshold, "zerovalue": 0.0, "transform": "none",
                             "accutime": step_minutes, "long_name": "instantaneous rain rate"}),
                 "valid": (("y", "x"), valid.astype(np.uint8), {"long_name": "inside radar coverage",
                                                               "flag_values": "0 1"})}
    ds_attrs = {"schema": "radar", "schema_version": SCHEMA_VERSION, "projection": projection,
                "source": source, **(attrs or {})}
    ds = xr.Dataset(data_vars, coords, ds_attrs)
    check_radar(ds, "radar_dataset")
    return ds


def _regular(values: np.ndarray, step: float, name: str, what: str) -> None:
    if values.size < 2:
        return
    diffs = np.diff(values.astype(np.float64))
    bad = np.flatnonzero(~np.isclose(diffs, step, rtol=1e-6, atol=0.0))
    if bad.size:
        i = bad[0]
        raise ValueError(f"{name}: {what} is not regular with stepsize {step:g}: step {i} -> {i + 1} is "
                         f"{diffs[i]:g}{' (missing frames?)' if what == 'time' and diffs[i] > step else ''}")


def check_radar(ds: xr.Dataset, name: str, data: bool = True) -> None:
    """Raise ``ValueError`` naming ``name`` (a file) and the problem if ``ds`` breaks the ``radar`` schema.

    ``data=False`` checks only coordinates and attributes (cheap for large lazy archives).
    """
    if VARIABLE not in ds:
        raise ValueError(f"{name}: variable {VARIABLE!r} missing; variables: {', '.join(map(str, ds.data_vars))}")
    da = ds[VARIABLE]
    if da.dims != ("time", "y", "x"):
        raise ValueError(f"{name}: {VARIABLE} has dims {da.dims}, expected ('time', 'y', 'x')")
    units = da.attrs.get("units")
    if units != UNITS:
        raise ValueError(f"{name}: {VARIABLE} has units {units!r}, expected {UNITS!r} "
                         f"(convert with datasets.radar.to_mm_per_h)")
    if "valid" not in ds or ds["valid"].dims != ("y", "x"):
        raise ValueError(f"{name}: variable 'valid' [y, x] (radar coverage mask) missing")
    time = ds["time"].values
    if not np.issubdtype(time.dtype, np.datetime64):
        raise ValueError(f"{name}: time coordinate has dtype {time.dtype}, expected datetime64")
    step_s = ds["time"].attrs.get("stepsize")
    if step_s is None:
        raise ValueError(f"{name}: time coordinate has no 'stepsize' attribute (seconds)")
    _regular((time - time[0]) / np.timedelta64(1, "s"), float(step_s), name, "time")
    for axis in ("y", "x"):
        step = ds[axis].attrs.get("stepsize")
        if step is None or ds[axis].attrs.get("units") != "km":
            raise ValueError(f"{name}: coordinate {axis!r} needs 'units' = 'km' and a 'stepsize' attribute")
        _regular(ds[axis].values, float(step), name, axis)
    if not data:
        return
    valid = ds["valid"].values.astype(bool)
    values = da.data
    nan_inside = (np.isnan(values) & valid).any()
    negative = (values < 0).any()
    nan_inside, negative = (bool(v.compute()) if hasattr(v, "compute") else bool(v) for v in (nan_inside, negative))
    if nan_inside:
        raise ValueError(f"{name}: {VARIABLE} has NaN inside the radar coverage ('valid' = 1); mark no-data "
                         "pixels in 'valid'")
    if negative:
        raise ValueError(f"{name}: {VARIABLE} has negative rain rates")


def to_mm_per_h(ds: xr.Dataset, name: str = "dataset") -> xr.Dataset:
    """Convert ``precip_intensity`` from any known rain-rate unit to mm/h; unknown units are an error."""
    units = ds[VARIABLE].attrs.get("units")
    if units not in _UNIT_ALIASES:
        raise ValueError(f"{name}: unknown rain-rate units {units!r}; known: {', '.join(_UNIT_ALIASES)}")
    out = ds.copy()
    out[VARIABLE] = (ds[VARIABLE] * _UNIT_ALIASES[units]).astype(np.float32)
    out[VARIABLE].attrs = {**ds[VARIABLE].attrs, "units": UNITS}
    return out


def write_radar(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a checked ``radar`` Dataset atomically to ``path`` (``.nc``: NetCDF-4 with zlib; ``.zarr``)."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: radar files end in {' or '.join(SUFFIXES)}")
    check_radar(ds, str(path))
    ds = ds.copy()
    ds[VARIABLE].encoding = {}
    if path.suffix == ".nc":
        n_y, n_x = ds.sizes["y"], ds.sizes["x"]
        encoding = {VARIABLE: {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": (1, n_y, n_x)}}
        with atomic_path(path) as tmp:
            ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
        return path
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        # every chunk written, even one of fill values, so that a missing chunk means a damaged store
        ds.chunk({"time": 1}).to_zarr(tmp, mode="w", consolidated=False, write_empty_chunks=True)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def open_radar(path: str | os.PathLike, chunks: dict | None = None, check_data: bool = False) -> xr.Dataset:
    """Open a ``radar`` file lazily (dask chunks of ``chunks``, default one image) and check its schema.

    Values are checked only with ``check_data=True`` (that reads the whole file once).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such radar file")
    chunks = chunks or {"time": 1}
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: radar files end in {' or '.join(SUFFIXES)}")
    with corruption_as_value_error(path):
        if path.suffix == ".zarr":
            _check_chunks(path)
            ds = xr.open_zarr(path, chunks=chunks, consolidated=False)
        else:
            ds = xr.open_dataset(path, engine="h5netcdf", chunks=chunks)
        if ds.attrs.get("schema") != "radar":
            raise ValueError(f"{path}: not a physml radar file (schema attribute {ds.attrs.get('schema')!r})")
        check_version(path, ds.attrs.get("schema_version", -1), SCHEMA_VERSION)
        check_radar(ds, str(path), data=check_data)
    return ds


def _check_chunks(path: Path) -> None:
    """A Zarr store reads a missing chunk as fill values; physml writes every chunk, so one missing is damage."""
    for name, array in zarr.open_group(path, mode="r").arrays():
        missing = array.nchunks - array.nchunks_initialized
        if missing:
            raise ValueError(f"{path}: {name}: {missing} of {array.nchunks} chunks missing (a damaged or "
                             "partly copied store)")


def radar_files(folder: str | os.PathLike) -> list[Path]:
    """The radar files of one split folder, sorted by name."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{folder}: no radar files (*.nc, *.zarr); run `physml data generate radar`")
    return files


def check_same_grid(datasets: Sequence[xr.Dataset], names: Sequence[str]) -> None:
    """Files of one archive share a grid and time step; name the first file that does not."""
    ref = datasets[0]
    for ds, name in zip(datasets[1:], names[1:]):
        for axis in ("y", "x"):
            if ds.sizes[axis] != ref.sizes[axis] or not np.allclose(ds[axis].values, ref[axis].values):
                raise ValueError(f"{name}: grid {axis} ({ds.sizes[axis]} points from {float(ds[axis][0]):g} km) "
                                 f"differs from {names[0]} ({ref.sizes[axis]} from {float(ref[axis][0]):g} km)")
        if ds["time"].attrs["stepsize"] != ref["time"].attrs["stepsize"]:
            raise ValueError(f"{name}: time step {ds['time'].attrs['stepsize']} s differs from {names[0]}'s "
                             f"{ref['time'].attrs['stepsize']} s")


def read_odim(paths: Sequence[str | os.PathLike], quantity: str = "RATE") -> xr.Dataset:
    """ODIM HDF5 composites (one file per time, pysteps' importer) as one ``radar`` Dataset.

    Times come from the files' ``/what`` date and time; the coverage mask from their ``nodata`` pixels
    (``undetect`` is dry, not missing). Files must share a grid and be equally spaced in time.
    """
    import h5py
    from pysteps.io.importers import import_odim_hdf5

    if quantity != "RATE":
        raise ValueError(f"read_odim reads rain rate (quantity 'RATE'), got {quantity!r}")
    frames, times, meta0 = [], [], None
    for path in map(Path, paths):
        try:
            precip, _, meta = import_odim_hdf5(str(path), qty=quantity)
            with h5py.File(path, "r") as fh:
                what = fh["what"].attrs
                stamp = (what["date"].decode() if isinstance(what["date"], bytes) else str(what["date"])) + \
                        (what["time"].decode() if isinstance(what["time"], bytes) else str(what["time"]))
        except (OSError, KeyError) as err:
            raise ValueError(f"{path}: not a readable ODIM HDF5 rain-rate file ({err})") from None
        if meta0 is None:
            meta0 = meta
        elif precip.shape != frames[0].shape or not np.isclose(meta["x1"], meta0["x1"]) \
                or not np.isclose(meta["y1"], meta0["y1"]) or meta["xpixelsize"] != meta0["xpixelsize"]:
            raise ValueError(f"{path}: grid differs from {paths[0]}")
        frames.append(precip[::-1] if meta["yorigin"] == "upper" else precip)  # rows south to north
        times.append(np.datetime64(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:{stamp[10:12]}:"
                                   f"{stamp[12:14]}", "s"))
    precip = np.stack(frames).astype(np.float32)
    steps = np.diff(np.array(times)) / np.timedelta64(1, "m")
    step = float(steps[0]) if steps.size else 5.0
    if steps.size and not np.allclose(steps, step):
        raise ValueError(f"{paths[0]}..: ODIM files are not equally spaced in time (steps {steps} min); "
                         "missing frames?")
    valid = np.isfinite(precip).all(axis=0)
    if (np.isfinite(precip) & ~valid).any():  # coverage changes between frames: keep what all frames have
        precip[:, ~valid] = np.nan
    scale = 1000.0 if meta0["cartesian_unit"] == "m" else 1.0
    return radar_dataset(np.maximum(precip, 0.0, where=np.isfinite(precip), out=precip), times[0], step,
                         float(meta0["xpixelsize"]) / scale, valid, threshold=float(meta0["threshold"]),
                         origin_km=(meta0["y1"] / scale, meta0["x1"] / scale), projection=meta0["projection"],
                         source=f"ODIM HDF5 ({meta0['institution']})")


def forecast_dataset(members: np.ndarray, grid: xr.Dataset, reference_time: np.datetime64, method: str,
                     attrs: dict | None = None) -> xr.Dataset:
    """A nowcast as a ``radar-forecast`` Dataset: ``precip_intensity`` ``[ensemble_member, time, y, x]`` (mm/h)
    on the ``y``/``x`` grid of ``grid`` (a ``radar`` Dataset), ``time`` the valid times after ``reference_time``
    (the last observed frame) at the archive's time step; ``valid`` is copied from ``grid``."""
    members = np.asarray(members, dtype=np.float32)
    if members.ndim != 4 or members.shape[2:] != (grid.sizes["y"], grid.sizes["x"]):
        raise ValueError(f"forecast must be [member, lead, {grid.sizes['y']}, {grid.sizes['x']}], got {members.shape}")
    step_s = int(grid["time"].attrs["stepsize"])
    times = np.datetime64(reference_time, "s") + np.timedelta64(step_s, "s") * np.arange(1, members.shape[1] + 1)
    ds = xr.Dataset(
        {VARIABLE: (("ensemble_member", "time", "y", "x"), members,
                    {**grid[VARIABLE].attrs, "long_name": f"nowcast rain rate ({method})"}),
         "valid": grid["valid"]},
        {"ensemble_member": np.arange(members.shape[0]),
         "time": ("time", times, {"stepsize": step_s, "long_name": "valid time"}),
         "y": grid["y"], "x": grid["x"]},
        {"schema": "radar-forecast", "schema_version": SCHEMA_VERSION, "projection": grid.attrs.get("projection", ""),
         "method": method, "reference_time": str(np.datetime64(reference_time, "s")), **(attrs or {})})
    if not np.isfinite(members).all() or (members < 0).any():
        raise ValueError(f"{method}: forecast has NaN or negative rain rates")
    return ds


def write_forecast(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a ``radar-forecast`` Dataset atomically as NetCDF-4 (one compressed chunk per member and lead)."""
    path = Path(path)
    if path.suffix != ".nc" or ds.attrs.get("schema") != "radar-forecast":
        raise ValueError(f"{path}: forecasts are radar-forecast Datasets written to .nc files")
    _, _, n_y, n_x = ds[VARIABLE].shape
    encoding = {VARIABLE: {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": (1, 1, n_y, n_x)}}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return path
