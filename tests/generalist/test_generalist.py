"""The generalist: task rows against their sources, the causal decoder, greedy decoding, a balanced mixture,
and ``physml generalist train|evaluate`` end to end on tiny data of the three tasks."""
from pathlib import Path

import numpy as np
import pytest
import torch

from backbones.tokenise import Packed, sequence_loss
from generalist.model import Decoder
from generalist.tasks import TASKS, disk_examples, disk_positions, pool
from generalist.train import TOKENIZER, collate, loss_fn, pack, predict, rows
from training.mixture import Mixture

SAMPLE = Path(__file__).resolve().parents[2] / "hep" / "jets" / "sample"


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    from sims.data import generate_soft_disks

    out = tmp_path_factory.mktemp("disks")
    generate_soft_disks(out, seed=0, trajectories=4, frames=12, particles=12, progress=False)
    return out


def test_disk_rows_rebuild_the_trajectory_and_ballistic_is_exact_in_free_flight(disks):
    from datasets.trajectories import TrajectoryReader

    ex = disk_examples(str(disks), "train", None, seed=0)
    assert ex.inputs.shape == (4 * 10, 48) and ex.targets.shape == (40, 24)
    with TrajectoryReader(disks / "train.h5") as reader:
        frames = np.concatenate([reader[i].position[1:-1] for i in range(len(reader))]).reshape(40, -1)
        after = np.concatenate([reader[i].position[2:] for i in range(len(reader))]).reshape(40, -1)
    order = np.random.default_rng(0).permutation(40)
    np.testing.assert_allclose(ex.extra["last"], frames[order], atol=1e-6)
    np.testing.assert_allclose(disk_positions(ex, ex.targets), after[order], atol=1e-6)  # targets give x(t+1)
    # a disk touching nothing falls ballistically: the baseline's error is Verlet's, far below a disk's size
    ballistic = disk_examples(str(disks), "test", None, seed=0)
    error = np.abs(next(iter(ballistic.baselines.values())) - disk_positions(ballistic, ballistic.targets))
    assert np.median(error) < 1e-5


def test_radar_pooling_is_the_block_mean():
    x = np.arange(64 * 64, dtype=float).reshape(64, 64)
    assert pool(x).shape == (8, 8) and pool(x)[1, 2] == x[8:16, 16:24].mean()


def test_decoder_is_causal_and_greedy_decoding_returns_the_known_answer():
    torch.manual_seed(0)
    model = Decoder(TOKENIZER.vocab, dim=32, depth=2, heads=2, mlp_dim=64).eval()
    task = TASKS["disks"]
    rng = np.random.default_rng(0)
    from generalist.tasks import Examples
    ex = Examples(rng.normal(size=(3, 6)), rng.normal(size=(3, 4)), {}, {})
    packed = pack(task, ex)
    with torch.no_grad():
        logits = model(packed)
        changed = packed.tokens.clone()
        changed[:, 5] = TOKENIZER.padding
        later = model(Packed(changed, packed.loss_mask, packed.positions))
    assert torch.equal(logits[:, :5], later[:, :5]) and not torch.allclose(logits[:, 5:], later[:, 5:])
    # a network that always predicts token b decodes every target as bin b's centre
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[TOKENIZER.discrete + 700] = 10.0
    decoded = predict(model, task, ex)
    assert np.allclose(decoded, TOKENIZER.decode(torch.tensor(TOKENIZER.discrete + 700)).item())


def test_mixture_balances_tasks_whatever_their_sizes():
    big = TOKENIZER.pack("jets", torch.zeros(10, 3, dtype=torch.long), torch.zeros(10, 1, dtype=torch.long))
    small = TOKENIZER.pack("radar", torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long))
    mixture = Mixture([rows(big), rows(small)])
    assert len(mixture) == 20
    tasks = [int(mixture[i].tokens[0, 0]) for i in range(20)]
    assert tasks.count(TOKENIZER.task_token("jets")) == tasks.count(TOKENIZER.task_token("radar")) == 10
    batch = collate([mixture[i] for i in range(4)])  # jets, radar, jets, radar
    assert [g.tokens.shape for g in batch.groups] == [(2, 6), (2, 9)] and len(batch) == 4
    assert not any((g.tokens == TOKENIZER.padding).any() for g in batch.groups)  # no row padded to another task's


def test_every_example_weighs_the_same_in_the_loss():
    torch.manual_seed(0)
    model = Decoder(TOKENIZER.vocab, dim=16, depth=1, heads=2, mlp_dim=32)
    jets = TOKENIZER.pack("jets", torch.randint(2, 100, (3, 4)), torch.randint(0, 2, (3, 1)))
    radar = TOKENIZER.pack("radar", torch.randint(2, 100, (1, 6)), torch.randint(2, 100, (1, 5)))
    loss, _ = loss_fn(model, collate([jets[0:1], radar, jets[1:2], jets[2:3]]))
    expected = (3 * sequence_loss(model(jets), jets) + sequence_loss(model(radar), radar)) / 4
    torch.testing.assert_close(loss, expected)


@pytest.mark.slow
def test_generalist_and_specialist_commands_on_tiny_data(tmp_path, disks):
    from physml.cli import main
    from training.report import read_report

    radar = tmp_path / "radar"
    assert main(["data", "generate", "radar", "--out", str(radar), "--events", "8", "--frames", "24", "--size", "64",
                 "--no-progress"]) == 0
    data = ["--jets-data", str(SAMPLE), "--disks-data", str(disks), "--radar-data", str(radar)]
    common = ["--steps", "4", "--batch-size", "8", "--dim", "32", "--depth", "1", "--examples", "64",
              "--no-progress", *data]
    assert main(["generalist", "train", "--run-dir", str(tmp_path / "all"), *common]) == 0
    for task in TASKS:
        assert main(["generalist", "train", "--tasks", task, "--run-dir", str(tmp_path / task), *common]) == 0
    out = tmp_path / "eval"
    assert main(["generalist", "evaluate", str(tmp_path / "all"), *(str(tmp_path / t) for t in TASKS),
                 "--examples", "16", "--out", str(out)]) == 0
    rows = {r.key: r for r in read_report(out).rows}
    assert {"jets/all", "jets/jets", "disks/all", "disks/disks", "radar/all", "radar/radar"} <= set(rows)
    assert rows["jets/jets"]["of_specialist"] == pytest.approx(100.0)
    assert 0 <= rows["jets/all"]["auc"] <= 1 and rows["disks/all"]["rmse_mm"] > 0 and rows["radar/all"]["rmse_mmh"] >= 0
    assert any(key.startswith("radar/extrapolation") for key in rows)
    assert main(["generalist", "train", "--tasks", "jets", "jets", "--run-dir", str(tmp_path / "bad"), *common]) == 2
