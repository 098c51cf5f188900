"""The weather commands end to end on a tiny archive: generate, train every model, evaluate, nowcast."""
import json

import numpy as np
import pytest
import xarray as xr

from physml.cli import main
from training.report import read_report
from weather import ldm


@pytest.mark.slow
def test_generate_train_evaluate_nowcast(tmp_path, capsys):
    data = tmp_path / "radar"
    assert 0 == main(["data", "generate", "radar", "--out", str(data), "--events", "4", "--frames", "26",
                      "--size", "64", "--no-progress"])
    assert 0 == main(["weather", "train", "--data", str(data), "--run-dir", str(tmp_path / "dgmr"),  # DGMR: default
          "--steps", "2", "--base", "2", "--crop", "32", "--no-progress"])
    assert 0 == main(["weather", "train", "unet", "--data", str(data), "--run-dir", str(tmp_path / "unet"),
          "--steps", "2", "--channels", "8", "16", "--base", "extrapolation", "--crop", "32", "--no-progress"])
    assert 0 == main(["weather", "train", "rain-ae", "--data", str(data), "--run-dir", str(tmp_path / "ae"),
          "--steps", "2", "--channels", "8", "8", "8", "--crop", "32", "--no-progress"])
    assert 0 == main(["weather", "train", "ldm", "--data", str(data), "--autoencoder", str(tmp_path / "ae"),
          "--first-guess", str(tmp_path / "unet"), "--run-dir", str(tmp_path / "ldm"), "--steps", "2", "--dim", "16",
          "--depth", "1", "--cond-channels", "8",
          "--unet-channels", "16", "16", "--sampling-steps", "2", "--crop", "32", "--no-progress"])
    assert 0 == main(["weather", "calibrate", str(tmp_path / "ldm"), "--crops", "2", "--members", "2"])
    config = json.loads((tmp_path / "ldm" / "config.json").read_text())["run"]["ldm"]
    assert len(config["spread"]) == 18 and set(config["spread"]) <= set(ldm.SPREAD_CANDIDATES)
    assert config["first_guess_unet"] == [8, 16]  # the U-Net travels inside the latent nowcaster
    out = tmp_path / "eval"
    assert 0 == main(["weather", "evaluate", str(tmp_path / "dgmr"), str(tmp_path / "unet"), str(tmp_path / "ldm"),
                      "--data", str(data), "--out", str(out), "--crops", "2", "--crop", "32", "--members", "2",
                      "--no-progress"])
    table = capsys.readouterr().out
    for name in ("persistence", "extrapolation", "S-PROG", "STEPS", "DGMR (dgmr)", "U-Net (unet)",
                 "latent diffusion (ldm)"):
        assert f"| {name}" in table
    report = read_report(out)
    assert [r.key for r in report.rows] == ["persistence", "extrapolation", "sprog", "steps", "dgmr", "unet", "ldm"]
    assert len(report.extra["curves"]["persistence"]["csi"]["1"]) == 18
    assert report["persistence"]["csi1_6"] == report.extra["curves"]["persistence"]["csi"]["1"][5]
    assert "reliability" not in report["unet"].values and 0 <= report["ldm"]["reliability"] <= 2
    assert len(report.extra["curves"]["ldm"]["rank_histogram"][0]) == 3  # 2 members: 3 ranks
    for picture in ("csi.png", "crps.png", "fss.png", "rank_histogram.png", "psd.png", "frames.png"):
        assert (out / picture).stat().st_size > 0

    source = sorted((data / "test").glob("*.nc"))[0]
    forecast = tmp_path / "forecast.nc"
    assert 0 == main(["weather", "nowcast", str(source), "--run-dir", str(tmp_path / "ldm"), "--members", "3",
          "--out", str(forecast)])
    ds = xr.open_dataset(forecast, engine="h5netcdf")
    assert ds["precip_intensity"].dims == ("ensemble_member", "time", "y", "x")
    assert ds.sizes["ensemble_member"] == 3 and ds.sizes["time"] == 18
    observed = xr.open_dataset(source, engine="h5netcdf")
    assert ds["time"].values[0] == observed["time"].values[4]  # first lead is 5 min after the 4th frame
    assert ds.attrs["schema"] == "radar-forecast" and ds["precip_intensity"].attrs["units"] == "mm/h"
    assert np.isfinite(ds["precip_intensity"].values).all()

    before = source.read_bytes()
    assert main(["weather", "nowcast", str(source), "--baseline", "persistence", "--out", str(source)]) == 2
    assert "the output would replace the input" in capsys.readouterr().err and source.read_bytes() == before
    assert main(["weather", "nowcast", str(source), "--baseline", "persistence", "--time", "1999-01-01T00:00",
                 "--out", str(tmp_path / "never.nc")]) == 2
    assert "no frame at 1999-01-01" in capsys.readouterr().err
    assert not (tmp_path / "never.nc").exists()
