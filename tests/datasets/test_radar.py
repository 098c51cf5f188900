import h5py
import numpy as np
import pytest
import xarray as xr

from datasets import radar


def _rain(t: int = 5, n: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random((t, n, n)) < 0.3, rng.lognormal(0, 1, (t, n, n)), 0.0).astype(np.float32)


def _dataset(**kwargs) -> xr.Dataset:
    return radar.radar_dataset(_rain(), "2026-05-01T12:00", **kwargs)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip_is_exact_and_lazy(tmp_path, suffix):
    valid = np.ones((16, 16), bool)
    valid[:3] = False
    precip = _rain()
    precip[:, ~valid] = np.nan
    ds = radar.radar_dataset(precip, "2026-05-01T12:00", valid=valid, origin_km=(-100.0, 50.0))
    path = radar.write_radar(ds, tmp_path / f"a{suffix}")
    back = radar.open_radar(path, check_data=True)
    assert hasattr(back[radar.VARIABLE].data, "dask")  # lazy
    np.testing.assert_array_equal(back[radar.VARIABLE].values, precip)  # NaN only outside the coverage
    np.testing.assert_array_equal(back["valid"].values.astype(bool), valid)
    np.testing.assert_array_equal(back["time"].values, ds["time"].values)
    assert back["time"].attrs["stepsize"] == 300 and back["x"].attrs["units"] == "km"
    assert float(back["y"][0]) == -99.5 and float(back["x"][0]) == 50.5
    assert back[radar.VARIABLE].attrs["units"] == "mm/h"
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_frame_is_named(tmp_path):
    ds = _dataset().drop_isel(time=2)
    with pytest.raises(ValueError, match=r"b\.nc: time is not regular.*missing frames"):
        radar.write_radar(ds, tmp_path / "b.nc")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value, message", [(np.nan, "NaN inside the radar coverage"), (-1.0, "negative")])
def test_bad_values_are_named_and_leave_no_file(tmp_path, value, message):
    ds = _dataset()
    ds[radar.VARIABLE][1, 2, 3] = value
    with pytest.raises(ValueError, match=message):
        radar.write_radar(ds, tmp_path / "c.nc")
    assert not list(tmp_path.iterdir())


def test_bad_values_in_a_file_are_found_on_read(tmp_path):
    ds = _dataset()
    path = radar.write_radar(ds, tmp_path / "d.nc")
    with h5py.File(path, "r+") as fh:
        fh[radar.VARIABLE][0, 0, 0] = -3.0
    radar.open_radar(path)  # metadata only
    with pytest.raises(ValueError, match=r"d\.nc: precip_intensity has negative"):
        radar.open_radar(path, check_data=True)


def test_units(tmp_path):
    ds = _dataset()
    ds[radar.VARIABLE].attrs["units"] = "mm/min"
    with pytest.raises(ValueError, match="units 'mm/min', expected 'mm/h'"):
        radar.check_radar(ds, "e.nc")
    converted = radar.to_mm_per_h(ds)
    np.testing.assert_allclose(converted[radar.VARIABLE].values, 60 * ds[radar.VARIABLE].values, rtol=1e-6)
    ds[radar.VARIABLE].attrs["units"] = "dBZ"
    with pytest.raises(ValueError, match="unknown rain-rate units 'dBZ'"):
        radar.to_mm_per_h(ds, "e.nc")


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    path = radar.write_radar(_dataset(), tmp_path / "f.nc")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(OSError):
        radar.write_radar(_dataset(threshold=0.2), path)
    assert path.read_bytes() == before and not list(tmp_path.glob("*.tmp"))


def test_mismatched_grids_are_named():
    a, b = _dataset(), _dataset(pixel_km=2.0)
    with pytest.raises(ValueError, match="two.nc: grid y"):
        radar.check_same_grid([a, b], ["one.nc", "two.nc"])


def _write_odim(path, rain: np.ndarray, stamp: str, nodata_rows: int = 2) -> None:
    """An ODIM HDF5 composite (RATE, uint16 with gain/offset, nodata and undetect codes), rows north first."""
    gain, offset, nodata, undetect = 0.01, 0.0, 65535, 0
    codes = np.where(rain > 0, np.round(rain / gain), undetect).astype(np.uint16)[::-1]
    codes[:nodata_rows] = nodata  # northern rows outside the coverage
    with h5py.File(path, "w") as fh:
        fh.attrs["Conventions"] = np.bytes_("ODIM_H5/V2_2")
        what = fh.create_group("what")
        what.attrs.update({"object": np.bytes_("COMP"), "date": np.bytes_(stamp[:8]), "time": np.bytes_(stamp[8:])})
        where = fh.create_group("where")
        n = rain.shape[0]
        where.attrs.update({"projdef": np.bytes_("+proj=utm +zone=32 +ellps=WGS84 +units=m"), "xsize": n,
                            "ysize": n, "xscale": 1000.0, "yscale": 1000.0, "LL_lon": 9.0, "LL_lat": 48.0,
                            "UR_lon": 9.0 + n * 0.0135, "UR_lat": 48.0 + n * 0.009})
        data = fh.create_group("dataset1/data1")
        data.create_dataset("data", data=codes)
        data.create_group("what").attrs.update({"quantity": np.bytes_("RATE"), "gain": gain, "offset": offset,
                                                "nodata": float(nodata), "undetect": float(undetect)})


def test_read_odim(tmp_path):
    pytest.importorskip("pyproj")
    frames = _rain(t=3, n=12)
    paths = []
    for i, frame in enumerate(frames):
        paths.append(tmp_path / f"comp_{i}.h5")
        _write_odim(paths[-1], frame, f"20260501{12 + i // 12:02d}{5 * (i % 12):02d}00")
    ds = radar.read_odim(paths)
    assert ds.sizes == {"time": 3, "y": 12, "x": 12}
    assert ds["time"].attrs["stepsize"] == 300
    valid = ds["valid"].values.astype(bool)
    assert not valid[-2:].any() and valid[:-2].all()  # northern rows are the last ones (y ascending)
    np.testing.assert_allclose(ds[radar.VARIABLE].values[:, :-2], frames[:, :-2], atol=0.005)
    assert np.isnan(ds[radar.VARIABLE].values[:, -2:]).all()
    assert ds["x"].attrs["stepsize"] == 1.0


def test_read_odim_gap_is_named(tmp_path):
    pytest.importorskip("pyproj")
    frames = _rain(t=3, n=8)
    paths = []
    for i, minute in enumerate((0, 5, 15)):
        paths.append(tmp_path / f"comp_{i}.h5")
        _write_odim(paths[-1], frames[i], f"2026050112{minute:02d}00")
    with pytest.raises(ValueError, match="not equally spaced in time"):
        radar.read_odim(paths)


def test_deleted_zarr_chunk_is_named(tmp_path):
    valid = np.zeros((16, 16), bool)  # no coverage: every frame is all fill values, and still written
    precip = np.full((5, 16, 16), np.nan, np.float32)
    path = radar.write_radar(radar.radar_dataset(precip, "2026-05-01T12:00", valid=valid), tmp_path / "z.zarr")
    radar.open_radar(path, check_data=True)
    chunk = path / radar.VARIABLE / "c" / "2" / "0" / "0"
    chunk.unlink()
    with pytest.raises(ValueError, match=r"z\.zarr: precip_intensity: 1 of 5 chunks missing"):
        radar.open_radar(path)

