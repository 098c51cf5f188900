"""Options generated from run dataclasses and function signatures: one source of defaults and help."""
import argparse
from dataclasses import dataclass, field
from typing import Literal

import pytest

from physml.domains import recipes
from physml.flags import add_call_flags, add_run_flags, arg_docs
from training.trainer import TrainerConfig


@dataclass(frozen=True)
class Model:
    n_steps: int = 3                 # message-passing steps
    schedule: str = "cosine"         # noise schedule
    widths: tuple[int, ...] = (8, 16)
    secret: dict = field(default_factory=dict)


@dataclass
class Run:
    data_dir: str = "runs/data/x"    # where the data is
    model: Model = field(default_factory=Model)
    limit: int | None = None         # at most this many samples
    hidden: int = field(default=1, metadata={"cli": False})
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def parser_for(run_type=Run):
    p = argparse.ArgumentParser()
    return p, add_run_flags(p, run_type)


def test_no_flags_give_the_dataclass_defaults_for_every_recipe():
    for recipe in recipes():
        p, build = parser_for(recipe.run_type)
        assert build(p.parse_args([])) == recipe.run_type(), recipe.name


def test_flags_set_nested_fields_and_names_resolve_clashes():
    p, build = parser_for()
    run = build(p.parse_args(["--data", "d", "--message-passing-steps", "5", "--model-schedule", "linear",
                              "--schedule", "exponential", "--widths", "4", "4", "4", "--limit", "10",
                              "--grad-clip", "none", "--betas", "0", "0.99", "--no-progress"]))
    assert run.data_dir == "d" and run.model == Model(5, "linear", (4, 4, 4)) and run.limit == 10
    t = run.trainer
    assert t.schedule == "exponential" and t.grad_clip is None and t.betas == (0.0, 0.99) and not t.progress
    options = {a.dest for a in p._actions}
    assert "hidden" not in options and "model__secret" not in options


def test_help_comes_from_field_comments():
    p, _ = parser_for()
    text = p.format_help()
    assert "where the data is (default: runs/data/x)" in text and "at most this many samples" in text
    assert "--model-schedule" in text and "message-passing steps" in text


def task(run_dirs: list[str], *, out: str, mode: Literal["fast", "slow"] = "fast", limit: int | None = None,
         sizes: tuple[int, ...] = (1, 2)) -> dict:
    """Do something.

    Args:
        run_dirs: the runs,
            several of them.
        out: where it goes.
        mode: how.
    """
    return dict(run_dirs=run_dirs, out=out, mode=mode, limit=limit, sizes=sizes)


def test_signatures_become_positionals_required_options_and_choices():
    assert arg_docs(task) == {"run_dirs": "the runs, several of them.", "out": "where it goes.", "mode": "how."}
    p = argparse.ArgumentParser()
    options = add_call_flags(p, task)
    got = task(**options(p.parse_args(["a", "b", "--out", "o", "--mode", "slow", "--sizes", "3"])))
    assert got == dict(run_dirs=["a", "b"], out="o", mode="slow", limit=None, sizes=(3,))
    with pytest.raises(SystemExit):
        p.parse_args(["a"])  # --out is required
    with pytest.raises(SystemExit):
        p.parse_args(["a", "--out", "o", "--mode", "medium"])
