"""Typed configs: dataclasses to JSON and back, field comments as documentation."""
import json
from dataclasses import dataclass, field

import pytest

from training.config import field_docs, from_dict, to_dict
from training.trainer import TrainerConfig


@dataclass(frozen=True)
class Inner:
    widths: tuple[int, ...] = (8, 16)      # one per level
    pair: tuple[float, float] = (0.5, 2.0)
    kind: str | None = None                # None: from the data


@dataclass
class Outer:
    name: str = "run"
    inner: Inner = field(default_factory=Inner)
    limit: int | None = None
    scale: float = 1.0
    extra: dict = field(default_factory=dict)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def test_json_round_trip_restores_nested_dataclasses_tuples_and_optionals():
    original = Outer(name="x", inner=Inner((1, 2, 3), (0.1, 0.2), "flow"), limit=7, scale=3.0,
                     extra={"bounds": [[0, 1], [0, 1]]}, trainer=TrainerConfig(steps=5, betas=(0.0, 0.9)))
    again = from_dict(Outer, json.loads(json.dumps(to_dict(original))))
    assert again == original
    assert isinstance(again.inner.widths, tuple) and isinstance(again.trainer.betas, tuple)


def test_missing_fields_take_defaults_and_ints_read_as_floats():
    assert from_dict(Outer, {"scale": 2}) == Outer(scale=2.0)


@pytest.mark.parametrize("data, where", [({"inner": {"widths": [1, "a"]}}, "inner.widths[1]"),
                                         ({"limit": "ten"}, "limit"), ({"inner": {"pair": [1.0]}}, "inner.pair"),
                                         ({"trainer": {"stepz": 3}}, "trainer"), ({"name": 3}, "name")])
def test_bad_values_name_the_field(data, where):
    with pytest.raises(ValueError) as err:
        from_dict(Outer, data)
    assert str(err.value).startswith(where)


def test_field_comments_are_the_documentation():
    docs = field_docs(Inner)
    assert docs == {"widths": "one per level", "kind": "None: from the data"}
    assert field_docs(TrainerConfig)["batch_size"] == "global: split evenly over torchrun processes"
