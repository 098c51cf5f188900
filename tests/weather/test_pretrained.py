"""The shipped nowcaster: a weights-only checkpoint, its card's check reproduced from the shipped weights on a
fresh archive (a seed it never saw) against the baseline the card names, and `weather nowcast --pretrained`."""
import pytest
import torch
import xarray as xr

from physml.cli import main
from training.checkpoint import best_path
from weather.evaluate import evaluate
from weather.synthetic import generate_radar
from weather.train import SHIPPED


def test_shipped_nowcaster_loads_weights_only():
    assert set(torch.load(best_path(SHIPPED["latent-diffusion"].folder), weights_only=True)) == {"model"}


@pytest.mark.slow
def test_shipped_nowcaster_reproduces_its_card_and_nowcasts(tmp_path):
    card = SHIPPED["latent-diffusion"]
    check = card.check
    data = tmp_path / "radar"
    generate_radar(data, seed=check["seed"], events=check["events"], frames=check["frames"], size=check["size"],
                   progress=False)
    report = evaluate((), str(data), str(tmp_path / "eval"), crops=check["crops"], members=check["members"],
                      progress=False, pretrained=card.name)
    measured = report[card.name][check["metric"]]
    assert abs(measured / check["value"] - 1) <= check["tolerance"], (measured, check)
    assert measured < report[check["baseline"]][check["metric"]]

    source = sorted((data / "test").glob("*.nc"))[0]
    forecast = tmp_path / "forecast.nc"
    assert main(["weather", "nowcast", str(source), "--pretrained", card.name, "--members", "2", "--device", "cpu",
                 "--out", str(forecast)]) == 0
    ds = xr.open_dataset(forecast, engine="h5netcdf")
    assert ds.sizes["ensemble_member"] == 2 and ds.sizes["time"] == 18
    assert main(["weather", "nowcast", str(source), "--pretrained", card.name, "--baseline", "persistence",
                 "--out", str(tmp_path / "never.nc")]) == 2
    assert not (tmp_path / "never.nc").exists()
