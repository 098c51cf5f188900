import json
import shutil

import pytest
import torch
from torch import nn

from tests.training.toy import losses, make_gan_trainer, make_trainer
from training.checkpoint import best_path, list_checkpoints, load_checkpoint
from training.sparsity import SparsityConfig, drop_and_grow, gmp_sparsity, kept, layer_densities, sparse_weights


def sparse(method: str, sparsity: float = 0.75, **changes) -> SparsityConfig:
    """Both layers of the toy model sparsified, masks moving every 3 steps of the 30-step toy run."""
    return SparsityConfig(sparsity=sparsity, sparse_method=method, sparse_dense_first=False,
                          sparse_update_every=3, **changes)


def nonzeros(trainer) -> list[int]:
    return [int((w != 0).sum()) for _, w in sparse_weights(trainer.model, dense_first=False)]


def test_erk_densities_follow_the_published_arithmetic():
    shapes = [torch.Size([8, 4]), torch.Size([8, 8]), torch.Size([2, 8])]  # 32, 64, 16 weights
    # density 1/2: 56 of 112 weights; raw (out + in) / (out in) = 12/32, 16/64, 10/16; scale 56 / (12 + 16 + 10)
    assert layer_densities(shapes, 0.5, "erk") == pytest.approx([12 / 32 * 56 / 38, 16 / 64 * 56 / 38,
                                                                 10 / 16 * 56 / 38])
    # density 0.8: the last layer would get 10/16 * 89.6/38 > 1, so it is dense and the rest share 89.6 - 16
    assert layer_densities(shapes, 0.8, "erk") == pytest.approx([12 / 32 * 73.6 / 28, 16 / 64 * 73.6 / 28, 1.0])
    assert layer_densities(shapes, 0.3, "uniform") == [0.3] * 3
    assert kept(64, 0.3) == 19 and kept(10, 0.01) == 1


def test_conv_and_linear_weights_are_sparsified_and_the_first_layer_kept_dense():
    model = nn.Sequential(nn.Conv1d(3, 8, 3), nn.ReLU(), nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    assert [name for name, _ in sparse_weights(model)] == ["2.weight", "4.weight"]
    assert [name for name, _ in sparse_weights(model, dense_first=False)] == ["0.weight", "2.weight", "4.weight"]


def test_gmp_schedule_is_the_cubic_formula():
    for step in (0, 10, 25, 40, 55, 70, 100):
        progress = min(1.0, max(0.0, (step - 10) / 60))
        assert gmp_sparsity(step, 0.9, 10, 70) == pytest.approx(0.9 * (1 - (1 - progress) ** 3))
    assert gmp_sparsity(5, 0.9, 10, 70) == 0 and gmp_sparsity(90, 0.9, 10, 70) == pytest.approx(0.9)


def test_rigl_drops_the_smallest_weights_and_grows_the_largest_gradients():
    g = torch.Generator().manual_seed(0)
    weight, grad = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    mask = torch.rand(6, 5, generator=g) < 0.4
    weight = weight * mask
    new, grown = drop_and_grow(weight, mask, grad, 3)
    # the oracle, by sorting lists
    active = sorted((abs(float(weight.flatten()[i])), i) for i in range(30) if mask.flatten()[i])
    dropped = {i for _, i in active[:3]}
    candidates = sorted(((abs(float(grad.flatten()[i])), i) for i in range(30)
                         if not mask.flatten()[i] or i in dropped), reverse=True)
    expected_grown = {i for _, i in candidates[:3]}
    expected = {i for _, i in active[3:]} | expected_grown
    assert set(torch.nonzero(new.flatten()).flatten().tolist()) == expected
    assert set(torch.nonzero(grown.flatten()).flatten().tolist()) == expected_grown
    assert int(new.sum()) == int(mask.sum())


@pytest.mark.parametrize("method", ["rigl", "topkast", "gmp"])
def test_masks_keep_the_requested_density_of_every_layer(tmp_path, method):
    cfg = sparse(method)
    trainer = make_trainer(tmp_path / "run", sparse=cfg)
    densities = layer_densities([torch.Size([16, 4]), torch.Size([1, 16])], 0.25, "erk")
    expected = [kept(64, densities[0]), kept(16, densities[1])]
    trainer.fit()
    assert [int(m.sum()) for m in trainer.callbacks[0].masks] == expected
    assert nonzeros(trainer) == expected  # the weights the model holds are the sparse ones
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert train[-1]["sparsity"] == pytest.approx(1 - sum(expected) / 80)


def test_rigl_moves_connections_during_training_and_stops_at_sparse_end(tmp_path):
    trainer = make_trainer(tmp_path / "run", sparse=sparse("rigl", sparse_end=0.5), checkpoint_every=3)
    trainer.fit()
    masks = [load_checkpoint(path)["callbacks"][0]["masks"][0] for path in list_checkpoints(tmp_path / "run")]
    changed = [not torch.equal(a, b) for a, b in zip(masks, masks[1:])]  # checkpoints at 3, 6, ..., 30
    assert any(changed[:4]) and not any(changed[4:])  # updates at 3..12 (< 15 = sparse_end), none after


def test_gmp_prunes_monotonically_to_the_final_sparsity(tmp_path):
    trainer = make_trainer(tmp_path / "run", sparse=sparse("gmp", 0.8, sparse_begin=0.2, sparse_end=0.7),
                           checkpoint_every=3, select_by="loss", eval_every=3)
    trainer.fit()
    assert load_checkpoint(best_path(tmp_path / "run"))["step"] >= 21  # only fully pruned models are selected
    masks = [load_checkpoint(path)["callbacks"][0]["masks"] for path in list_checkpoints(tmp_path / "run")]
    counts = [sum(int(m.sum()) for m in step) for step in masks]
    assert counts[0] == 80 and all(a >= b for a, b in zip(counts, counts[1:]))
    for earlier, later in zip(masks, masks[1:]):  # pruned weights never come back
        assert all(not (b & ~a).any() for a, b in zip(earlier, later))
    densities = layer_densities([torch.Size([16, 4]), torch.Size([1, 16])], 0.2, "erk")
    assert [int(m.sum()) for m in masks[-1]] == [kept(64, densities[0]), kept(16, densities[1])]
    assert 1 - counts[-1] / 80 == pytest.approx(0.8, abs=0.02)


def test_topkast_forward_uses_only_a_and_updates_touch_only_b(tmp_path):
    trainer = make_trainer(tmp_path / "run", sparse=sparse("topkast", 0.75), steps=1, lr=1e-2, weight_decay=0.0)
    before = [w.detach().clone() for _, w in sparse_weights(trainer.model, dense_first=False)]
    trainer.fit()
    callback = trainer.callbacks[0]
    assert all((a & ~b).sum() == 0 for a, b in zip(callback.masks, callback.backward))  # A inside B
    assert all(int(b.sum()) > int(a.sum()) for a, b in zip(callback.masks, callback.backward))
    for theta, old, a, b, (_, w) in zip(callback.theta, before, callback.masks, callback.backward,
                                        sparse_weights(trainer.model, dense_first=False)):
        moved = theta != old
        assert moved.any() and not (moved & ~b).any()  # Adam's first step moves exactly the entries with gradient
        assert torch.equal(w, theta * a)  # the forward weights are theta on A and zero elsewhere
    # the loss the model reports is the loss of theta masked to A
    x = torch.randn(5, 4, dtype=torch.float64)
    manual = nn.functional.linear(torch.tanh(nn.functional.linear(x, callback.theta[0] * callback.masks[0],
                                                                  trainer.model[0].bias)),
                                  callback.theta[1] * callback.masks[1], trainer.model[3].bias)
    trainer.model.eval()
    assert torch.allclose(trainer.model(x), manual, rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", ["rigl", "topkast", "gmp"])
def test_a_resumed_sparse_run_is_bit_identical(tmp_path, method):
    cfg = sparse(method, sparse_begin=0.0, sparse_end=0.9)
    make_trainer(tmp_path / "full", sparse=cfg).fit()
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")
    for ckpt in list_checkpoints(tmp_path / "resumed")[1:]:
        ckpt.unlink()
    make_trainer(tmp_path / "resumed", sparse=cfg, resume=True).fit()
    assert losses(tmp_path / "resumed") == losses(tmp_path / "full")
    final = [load_checkpoint(list_checkpoints(tmp_path / run)[-1]) for run in ("full", "resumed")]
    assert all(torch.equal(a, b) for a, b in zip(final[0]["callbacks"][0]["masks"], final[1]["callbacks"][0]["masks"]))
    assert all(torch.equal(final[0]["model"][k], final[1]["model"][k]) for k in final[0]["model"])
    with pytest.raises(ValueError, match="callbacks"):  # a dense resume of a sparse run is refused
        make_trainer(tmp_path / "resumed", resume=True, steps=40).fit()


def test_bad_sparse_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="gmp"):
        make_trainer(tmp_path / "a", sparse=sparse("rigl", sparse_distribution="global"))
    with pytest.raises(ValueError, match="ema-decay"):
        make_trainer(tmp_path / "b", sparse=sparse("rigl"), ema_decay=0.9)
    with pytest.raises(ValueError, match="below 1"):
        make_trainer(tmp_path / "c", sparse=sparse("rigl", 1.0))
    with pytest.raises(ValueError, match="not supported"):
        make_gan_trainer(tmp_path / "d", sparse=sparse("rigl"))


def test_rigl_grows_by_the_dense_gradient_and_grown_weights_start_at_zero(tmp_path, monkeypatch):
    import training.sparsity as sparsity

    calls = []

    def recording(weight, mask, grad, k):
        new, grown = drop_and_grow(weight, mask, grad, k)
        calls.append((mask.clone(), grad.clone(), grown))
        return new, grown

    monkeypatch.setattr(sparsity, "drop_and_grow", recording)
    trainer = make_trainer(tmp_path / "run", sparse=sparse("rigl", sparse_update_fraction=0.9), checkpoint_every=3)
    trainer.fit()
    # two layers, updates after steps 3, 6, ..., 18; at 21 (< 0.75 x 30) the decayed fraction moves no weight
    assert len(calls) == 2 * 6
    for mask, grad, _ in calls:  # the gradient of the dense layer, not the masked one (nor the weights)
        assert (grad[~mask] != 0).any()
    checkpoints = {load_checkpoint(p)["step"]: load_checkpoint(p)["model"] for p in list_checkpoints(tmp_path / "run")}
    for i, (_, _, grown) in enumerate(calls):
        weights = checkpoints[3 * (i // 2 + 1)][["0.weight", "3.weight"][i % 2]]
        assert grown.any() and (weights[grown] == 0).all()


@pytest.mark.slow
def test_a_sparse_tagger_trains_resumes_exactly_and_evaluates_from_the_command_line(tmp_path):
    from hep.jets import SAMPLE_DIR
    from physml.cli import main
    from training.report import read_report

    methods = ("rigl", "topkast", "gmp")
    for method in methods:
        args = ["hep", "train-jets", "--data", str(SAMPLE_DIR), "--model", "particlenet-lite", "--sparsity", "0.9",
                "--sparse-method", method, "--sparse-update-every", "2", "--sparse-begin", "0", "--steps", "12",
                "--batch-size", "32", "--checkpoint-every", "6", "--log-every", "1", "--no-progress"]
        run = tmp_path / method
        assert main([*args, "--run-dir", str(run)]) == 0
        shutil.copytree(run, tmp_path / f"{method}-resumed")
        list_checkpoints(tmp_path / f"{method}-resumed")[-1].unlink()  # interrupted after step 6
        assert main([*args, "--run-dir", str(tmp_path / f"{method}-resumed"), "--resume"]) == 0
        assert losses(tmp_path / f"{method}-resumed") == losses(run)
        weights = load_checkpoint(list_checkpoints(run)[-1])["model"]
        masks = load_checkpoint(list_checkpoints(run)[-1])["callbacks"][0]
        zeros = sum(int((weights[name] == 0).sum()) for name in masks["names"])
        assert zeros / sum(weights[name].numel() for name in masks["names"]) == pytest.approx(0.9, abs=0.005)
    assert main(["hep", "evaluate-jets", *(str(tmp_path / m) for m in methods), "--out", str(tmp_path / "eval")]) == 0
    assert [r.key for r in read_report(tmp_path / "eval").rows][:3] == list(methods)


def test_forward_flops_skip_exactly_the_zero_weights():
    from training.sparsity import forward_flops

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6))
    with torch.no_grad():
        model[2].weight[:, :6] = 0  # 36 of the second layer's 48 weights
    x = torch.randn(5, 4)
    dense, effective = forward_flops(model, x)
    assert dense == 2 * 5 * (4 * 8 + 8 * 6)
    assert effective == pytest.approx(dense - 2 * 5 * 36)
    # planned densities apply to the layers sparse training would touch (the first stays dense)
    assert forward_flops(model, x, densities=[0.25])[1] == pytest.approx(2 * 5 * (4 * 8 + 0.25 * 48))
