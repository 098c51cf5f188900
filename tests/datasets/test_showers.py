"""The CaloChallenge shower files: round trips, foreign files, and clear errors on bad ones."""
import h5py
import numpy as np
import pytest

from datasets.showers import CaloGeometry, read_geometry, read_showers, write_showers

SMALL = CaloGeometry(n_layers=3, n_alpha=4, n_radial=2)


def showers(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(1e3, 1e6, (n, 1)), rng.exponential(1.0, (n, SMALL.n_voxels)) * (rng.random((n, 24)) > 0.5)


def test_round_trip_keeps_values_geometry_and_units(tmp_path):
    energy, deposits = showers()
    path = write_showers(tmp_path / "s.h5", energy, deposits, SMALL, {"seed": 3})
    e, s = read_showers(path)
    assert np.allclose(e, energy, rtol=1e-6) and np.allclose(s, deposits, rtol=1e-6)
    assert read_geometry(path) == SMALL
    with h5py.File(path) as f:
        assert f["showers"].attrs["units"] == "MeV" and f.attrs["schema"] == "calo-showers"
    assert len(read_showers(path, limit=2)[1]) == 2


def test_reads_a_calochallenge_file_without_attributes(tmp_path):
    energy, deposits = np.full((2, 1), 5e4), np.zeros((2, CaloGeometry().n_voxels))
    with h5py.File(tmp_path / "challenge.h5", "w") as f:  # as the challenge ships them: two datasets only
        f["incident_energies"], f["showers"] = energy, deposits
    e, s = read_showers(tmp_path / "challenge.h5")
    assert s.shape == (2, 6480) and e.shape == (2, 1)


@pytest.mark.parametrize("change, message", [
    (lambda f: f.__delitem__("showers"), "missing dataset"),
    (lambda f: (f.__delitem__("incident_energies"), f.create_dataset("incident_energies", data=np.ones((4, 1)))),
     "4 incident energies but 5 showers"),
    (lambda f: f["incident_energies"].__setitem__(0, -1.0), "positive"),
    (lambda f: f["showers"].__setitem__((1, 2), -3.0), "non-negative"),
])
def test_bad_files_give_errors_that_name_the_file(tmp_path, change, message):
    path = write_showers(tmp_path / "bad.h5", *showers(), SMALL)
    with h5py.File(path, "r+") as f:
        change(f)
    with pytest.raises(ValueError, match=message) as err:
        read_showers(path)
    assert "bad.h5" in str(err.value)


def test_voxel_count_must_fit_the_geometry(tmp_path):
    path = write_showers(tmp_path / "s.h5", *showers(), SMALL)
    with pytest.raises(ValueError, match=r"\[N, 6480\] for a 45x16x9 geometry"):
        read_showers(path, CaloGeometry())
    with pytest.raises(FileNotFoundError, match="no such shower file"):
        read_showers(tmp_path / "absent.h5")


def test_a_rejected_write_leaves_no_file(tmp_path):
    energy, deposits = showers()
    with pytest.raises(ValueError, match="showers must be"):
        write_showers(tmp_path / "x.h5", energy, deposits[:, :-1], SMALL)
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_schema_or_newer_version_is_refused(tmp_path):
    write_showers(tmp_path / "s.h5", *showers(4), SMALL)
    for attrs, message in (({"schema": "particle-trajectories"}, "'schema' is 'particle-trajectories'"),
                           ({"schema_version": 99}, "schema_version 99 is newer"),
                           ({"schema_version": "one"}, "attribute 'schema_version' is 'one', expected an integer")):
        with h5py.File(tmp_path / "s.h5", "a") as f:
            f.attrs.update({"schema": "calo-showers", "schema_version": 1, **attrs})
        with pytest.raises(ValueError, match=message):
            read_showers(tmp_path / "s.h5")


def test_a_petabyte_shape_is_refused_before_allocating(tmp_path):
    with h5py.File(tmp_path / "huge.h5", "w") as f:  # HDF5 stores unwritten chunks as nothing: the file is tiny
        f.create_dataset("incident_energies", shape=(10 ** 11, 1), dtype="f4", chunks=(1024, 1))
        f.create_dataset("showers", shape=(10 ** 11, SMALL.n_voxels), dtype="f4", chunks=(16, SMALL.n_voxels))
    with pytest.raises(ValueError, match=r"huge.h5: 'incident_energies' declares shape \(100000000000, 1\) .* more "
                                         "than the free memory"):
        read_showers(tmp_path / "huge.h5", SMALL)
