import json
import shutil

import pytest
import torch

from tests.conftest import requires_cuda
from tests.training.toy import losses, make_trainer, mse
from training.checkpoint import best_path, list_checkpoints, load_checkpoint, model_checkpoint
from training.optimizers import Lookahead
from training.schedules import cosine, exponential_decay, flat_decay


def test_training_reduces_loss_and_writes_run_folder(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=60)
    result = trainer.fit()
    history = losses(tmp_path / "run")
    assert history[-1][1] < 0.5 * history[0][1]
    assert {"loss", "rmse"} <= set(result)
    for name in ("config.json", "metrics.jsonl", "metrics.csv", "loss.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_checkpoint_loads_with_weights_only_and_holds_everything(tmp_path):
    make_trainer(tmp_path / "run").fit()
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])
    assert state["step"] == 30
    assert {"model", "optimizer", "scheduler", "rng", "config"} <= set(state)
    assert state["config"]["trainer"]["steps"] == 30
    torch.load(list_checkpoints(tmp_path / "run")[0], weights_only=True)


@pytest.mark.parametrize("dtype, precision, options", [
    (torch.float64, "fp32", {}), (torch.float32, "fp32", {}), (torch.float32, "bf16", {}),
    (torch.float64, "fp32", {"optimizer": "ranger", "schedule": "flat_decay", "select_by": "loss", "eval_every": 4}),
    (torch.float64, "fp32", {"ema_decay": 0.9, "select_by": "loss", "eval_every": 4})])
def test_resumed_run_gives_the_same_losses_as_an_uninterrupted_one(tmp_path, dtype, precision, options):
    make_trainer(tmp_path / "full", dtype=dtype, precision=precision, **options).fit()
    full = losses(tmp_path / "full")
    # the interrupted run: the state of the full run as it stood just after the step-10 checkpoint,
    # including metric rows logged after that checkpoint, which the resume must drop
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")
    for ckpt in list_checkpoints(tmp_path / "resumed")[1:]:
        ckpt.unlink()
    make_trainer(tmp_path / "resumed", resume=True, dtype=dtype, precision=precision, **options).fit()
    resumed = losses(tmp_path / "resumed")
    assert [s for s, _ in resumed] == [s for s, _ in full]
    assert [l for _, l in resumed] == [l for _, l in full]  # bit-exact
    if "select_by" in options:
        assert load_checkpoint(best_path(tmp_path / "resumed"))["step"] == load_checkpoint(
            best_path(tmp_path / "full"))["step"]
    if "ema_decay" in options:  # the weight average resumes exactly too
        final = [load_checkpoint(list_checkpoints(tmp_path / run)[-1])["ema"] for run in ("full", "resumed")]
        assert final[0]["updates"] == final[1]["updates"] == 30
        assert all(torch.equal(final[0]["weights"][k], final[1]["weights"][k]) for k in final[0]["weights"])


def test_the_weight_average_follows_its_formula_and_is_what_evaluation_and_loading_use(tmp_path):
    from training.checkpoint import inference_weights
    from training.ema import EMA

    trainer = make_trainer(tmp_path / "run", mse, ema_decay=0.5, steps=12, eval_every=12, select_by="loss",
                           lr=0.2, schedule="constant")
    history, average = [], torch.nn.utils.parameters_to_vector(trainer.model.parameters()).detach().clone()
    original_update = EMA.update

    def recording(ema, model):  # the average by hand: a <- d a + (1 - d) w, d = min(0.5, (1 + n) / (10 + n))
        nonlocal average
        weights = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
        d = min(0.5, (1 + ema.updates) / (10 + ema.updates))
        average = d * average + (1 - d) * weights
        history.append(d)
        original_update(ema, model)

    EMA.update = recording
    try:
        result = trainer.fit()
    finally:
        EMA.update = original_update
    shadow = torch.nn.utils.parameters_to_vector(trainer.ema.shadow.parameters())
    assert history[:3] == pytest.approx([0.1, 2 / 11, 0.25]) and history[-1] == 0.5
    assert torch.allclose(shadow, average, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(shadow, torch.nn.utils.parameters_to_vector(trainer.model.parameters()))
    best = load_checkpoint(best_path(tmp_path / "run"))
    assert all(torch.equal(best["model"][k], v) for k, v in trainer.ema.shadow.state_dict().items())
    trainer.model.load_state_dict(inference_weights(load_checkpoint(list_checkpoints(tmp_path / "run")[-1])))
    trainer.ema = None  # evaluate the trained model, now holding the loaded average: what evaluation scored
    assert trainer.evaluate()["loss"] == pytest.approx(result["loss"], rel=1e-12)
    with pytest.raises(ValueError, match="ema_decay must be in"):
        make_trainer(tmp_path / "bad", ema_decay=1.0)


def test_select_by_keeps_the_weights_of_the_lowest_evaluation(tmp_path):
    trainer = make_trainer(tmp_path / "run", mse, select_by="loss", eval_every=3, lr=0.2, schedule="constant")
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [(r["loss"], r["step"]) for r in rows if r["split"] == "eval"]
    best = load_checkpoint(best_path(tmp_path / "run"))
    assert (best["loss"], best["step"]) == min(evaluations) and model_checkpoint(tmp_path / "run") == best_path(
        tmp_path / "run")
    trainer.model.load_state_dict(best["model"])
    assert trainer.evaluate()["loss"] == pytest.approx(best["loss"], rel=1e-12)
    with pytest.raises(ValueError, match="no metric 'accuracy'"):
        make_trainer(tmp_path / "other", select_by="accuracy", steps=3, eval_every=3).fit()


def test_eval_metrics_of_the_whole_model_are_logged_and_can_select_the_checkpoint(tmp_path):
    """A recipe's model-level metric (a validation rollout, say) is computed at every evaluation with the
    model in eval mode and no gradients, logged beside the loss and usable by ``select_by``."""
    seen = []

    def first_weight(model):
        seen.append((model.training, torch.is_grad_enabled()))
        return {"first_weight": float(model[0].weight[0, 0]) ** 2}

    trainer = make_trainer(tmp_path / "run", select_by="first_weight", eval_every=5, eval_metrics=first_weight)
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [(r["first_weight"], r["step"]) for r in rows if r["split"] == "eval"]
    assert len(evaluations) == 6 and set(seen) == {(False, False)}
    best = load_checkpoint(best_path(tmp_path / "run"))
    assert (best["first_weight"], best["step"]) == min(evaluations)
    assert float(best["model"]["0.weight"][0, 0]) ** 2 == pytest.approx(best["first_weight"], rel=1e-12)


def test_lookahead_moves_the_slow_weights_alpha_of_the_way_every_k_steps():
    def run(optimizer_of, steps):
        torch.manual_seed(0)
        layer = torch.nn.Linear(3, 1)
        optimizer = optimizer_of(layer.parameters())
        for step in range(steps):
            optimizer.zero_grad()
            layer(torch.full((4, 3), float(step + 1))).pow(2).mean().backward()
            optimizer.step()
        return torch.cat([p.detach().flatten() for p in layer.parameters()])

    def radam(params):
        return torch.optim.RAdam(params, lr=0.05, eps=1e-5)

    start = run(radam, 0)
    assert torch.equal(run(lambda p: Lookahead(radam(p), alpha=1.0, k=2), 6), run(radam, 6))
    assert torch.allclose(run(lambda p: Lookahead(radam(p), alpha=0.5, k=2), 2), start + 0.5 * (run(radam, 2) - start))


def test_the_exponential_schedule_ends_at_lr_final_by_default(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=40, lr=1e-3, lr_final=1e-5, schedule="exponential")
    trainer.fit()
    last = trainer.optimizer.param_groups[0]["lr"]  # the learning rate after the last step
    assert trainer.cfg.decay_steps == 10 and last == pytest.approx(1e-5 + 1e-4 * (1e-3 - 1e-5), rel=1e-9)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    make_trainer(tmp_path / "a", resume=True, steps=10).fit()
    assert losses(tmp_path / "a")[-1][0] == 10


def test_schedules():
    d = flat_decay(100, decay_fraction=0.3, final_factor=0.01)
    assert d(0) == d(70) == 1.0 and d(85) == pytest.approx(0.1) and d(100) == pytest.approx(0.01) == d(150)
    f = exponential_decay(1e-4, 1e-6, 5_000_000)
    assert f(0) == pytest.approx(1.0) and f(5_000_000) * 1e-4 == pytest.approx(1e-6 + 0.1 * (1e-4 - 1e-6))
    c = cosine(100, warmup_steps=10, final_factor=0.1)
    assert c(0) == pytest.approx(0.1) and c(10) == pytest.approx(1.0) and c(100) == pytest.approx(0.1)
    assert c(55) == pytest.approx(0.55)


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="schedule"):
        make_trainer(tmp_path, schedule="linear")
    with pytest.raises(ValueError, match="fewer than one batch"):
        make_trainer(tmp_path, batch_size=512)
    for bad, message in [({"steps": 0}, "steps: must be at least 1, got 0"), ({"lr": -1.0}, "lr: must be at least"),
                         ({"batch_size": 0}, "batch_size: must be at least 1"), ({"betas": (0.9, 1.5)}, "betas"),
                         ({"checkpoint_every": 0}, "checkpoint_every: must be at least 1")]:
        with pytest.raises(ValueError, match=message):
            make_trainer(tmp_path, **bad)


@requires_cuda
def test_resume_is_exact_on_cuda(tmp_path):
    make_trainer(tmp_path / "full", device="cuda").fit()
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")
    for ckpt in list_checkpoints(tmp_path / "resumed")[1:]:
        ckpt.unlink()
    make_trainer(tmp_path / "resumed", device="cuda", resume=True).fit()
    assert [l for _, l in losses(tmp_path / "resumed")] == pytest.approx([l for _, l in losses(tmp_path / "full")],
                                                                         rel=1e-12)
    assert "cuda" in load_checkpoint(list_checkpoints(tmp_path / "full")[-1])["rng"][0]


def test_an_earlier_run_is_replaced_only_when_asked(tmp_path):
    make_trainer(tmp_path / "run", steps=30).fit()
    with pytest.raises(ValueError, match="holds an earlier run .*step_00000030.*--resume.*--overwrite"):
        make_trainer(tmp_path / "run", steps=10).fit()
    assert len(list_checkpoints(tmp_path / "run")) == 3
    make_trainer(tmp_path / "run", steps=10, overwrite=True).fit()
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000010.pt"]
    assert losses(tmp_path / "run")[-1][0] == 10


def test_adversarial_resume_gives_the_same_losses(tmp_path):
    from tests.training.toy import make_gan_trainer

    make_gan_trainer(tmp_path / "full", steps=20).fit()
    make_gan_trainer(tmp_path / "cut", steps=10).fit()
    make_gan_trainer(tmp_path / "cut", steps=20, resume=True).fit()
    assert losses(tmp_path / "full") == losses(tmp_path / "cut")


def test_sigterm_checkpoints_and_the_resume_is_exact(tmp_path):
    """A SIGTERM (kill, a batch system's time limit) in the middle of step 13 stops training like Ctrl-C: the
    state after step 12 is saved and --resume gives the uninterrupted run's losses."""
    import os
    import signal

    from tests.training.toy import noisy_mse

    make_trainer(tmp_path / "full").fit()
    calls = {"n": 0}

    def killed_at_13(model, batch):
        if model.training:
            calls["n"] += 1
            if calls["n"] == 13:
                os.kill(os.getpid(), signal.SIGTERM)
        return noisy_mse(model, batch)

    with pytest.raises(KeyboardInterrupt):
        make_trainer(tmp_path / "cut", loss_fn=killed_at_13).fit()
    assert list_checkpoints(tmp_path / "cut")[-1].name == "step_00000012.pt"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the trainer's only while it runs
    make_trainer(tmp_path / "cut", resume=True).fit()
    assert [l for _, l in losses(tmp_path / "cut")] == pytest.approx([l for _, l in losses(tmp_path / "full")],
                                                                     rel=1e-12)


def test_corrupted_foreign_and_special_checkpoint_files_are_refused(tmp_path):
    import os

    make_trainer(tmp_path / "run", steps=10).fit()
    path = list_checkpoints(tmp_path / "run")[-1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="do not match .*corrupted"):
        load_checkpoint(path)
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pt: not a readable physml checkpoint"):
        load_checkpoint(tmp_path / "notes.pt")
    os.mkfifo(tmp_path / "pipe.pt")
    with pytest.raises(ValueError, match="not a regular file"):
        load_checkpoint(tmp_path / "pipe.pt")


def test_a_foreign_state_dict_in_the_run_folder_is_named_on_resume(tmp_path):
    trainer = make_trainer(tmp_path / "run", steps=10)
    trainer.fit()
    path = list_checkpoints(tmp_path / "run")[-1]
    torch.save({"model": trainer.model.state_dict()}, path)  # weights alone, as another tool saves them
    path.with_name(path.name + ".sha256").unlink()
    assert set(load_checkpoint(path)) == {"model"}  # enough to load the model
    with pytest.raises(ValueError, match=r"step_00000010.pt: the checkpoint has no 'optimizer', 'scheduler', 'rng', "
                                         r"'step' entry, needed to resume training"):
        make_trainer(tmp_path / "run", steps=20, resume=True).fit()
    torch.save(trainer.model.state_dict(), path)
    with pytest.raises(ValueError, match="has no 'model' entry, needed to load the model"):
        load_checkpoint(path)
