"""The data-config expression language: what physics configs need works, every escape is refused."""
import awkward as ak
import numpy as np
import pytest

from datasets.expressions import Expression
from datasets.root import DataConfig

FIELDS = {"px": ak.Array([[3.0, 1.0], [], [0.0, 4.0, 2.0]]), "py": ak.Array([[4.0, 1.0], [], [1.0, 3.0, 0.0]]),
          "jet_pt": np.array([10.0, 5.0, 20.0]), "q": ak.Array([[1, -1], [], [1, 1, -1]])}


@pytest.mark.parametrize("text, expected", [
    ("np.hypot(px, py)", lambda f: np.hypot(f["px"], f["py"])),
    ("(np.arctan2(py, px) + np.pi) % (2 * np.pi) - np.pi", lambda f: (np.arctan2(f["py"], f["px"]) + np.pi)
     % (2 * np.pi) - np.pi),
    ("ak.num(px)", lambda f: ak.num(f["px"])),
    ("ak.sum(q[:, :2], axis=1) == 0", lambda f: ak.sum(f["q"][:, :2], axis=1) == 0),
    ("(jet_pt > 6) & ~(jet_pt > 15)", lambda f: (f["jet_pt"] > 6) & ~(f["jet_pt"] > 15)),
    ("6 < jet_pt <= 20", lambda f: (f["jet_pt"] > 6) & (f["jet_pt"] <= 20)),
    ("-px ** 2 / 2", lambda f: -f["px"] ** 2 / 2),
])
def test_physics_expressions_evaluate_like_python(text, expected):
    got = Expression(text, FIELDS, "cfg").evaluate(FIELDS)
    assert ak.to_list(got) == ak.to_list(expected(FIELDS))


@pytest.mark.parametrize("text, refused", [
    ("np.__builtins__['__import__']('os').system('true')", "call"),
    ("np.__builtins__", "attribute"),
    ("np.sys.modules", "attribute"),
    ("px.__class__.__mro__", "attribute"),
    ("ak.Array.__init__", "attribute"),
    ("(lambda: 1)()", "call"),
    ("[x for x in px]", "ListComp"),
    ("__import__('os')", "call"),
    ("open('/etc/passwd')", "call"),
    ("np.load('x.npy', allow_pickle=True)", "call"),
    ("np.hypot(*px)", r"\*args"),
    ("np.sqrt(px, **{})", r"\*\*kwargs"),
    ("ak.sum(px, axis=jet_pt)", "keyword argument"),
    ("'text'", "str constant"),
    ("px and py", "BoolOp"),
    ("px if jet_pt else py", "IfExp"),
    ("px[jet_pt]", "index"),
    ("x := px", "not an expression|NamedExpr"),
])
def test_escapes_and_unsupported_syntax_are_refused_by_name(text, refused):
    with pytest.raises(ValueError, match=refused) as err:
        Expression(text, FIELDS, "jets.yaml: new_variables.x")
    assert str(err.value).startswith("jets.yaml: new_variables.x")


def test_unknown_names_and_bad_syntax_name_the_config_and_key(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("treename: jets\nbranches: [px]\nnew_variables:\n"
                    "  x: np.__builtins__['__import__']('os').system('touch pwned')\n")
    with pytest.raises(ValueError, match=r"evil.yaml: new_variables.x: .*not allowed"):
        DataConfig.from_yaml(path)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(ValueError, match="selection: 'pz > 1' uses 'pz', which is not a feature"):
        DataConfig.from_dict({"treename": "t", "branches": ["px"], "selection": "pz > 1"})
    with pytest.raises(ValueError, match=r"new_variables.a: 'px \+' is not an expression"):
        DataConfig.from_dict({"treename": "t", "branches": ["px"], "new_variables": {"a": "px +"}})
    ordered = DataConfig.from_dict({"treename": "t", "branches": ["px"], "new_variables": {"a": "px", "b": "a * 2"}})
    assert list(ordered.new_variables) == ["a", "b"]
    with pytest.raises(ValueError, match="uses 'b'"):
        DataConfig.from_dict({"treename": "t", "branches": ["px"], "new_variables": {"a": "b", "b": "px"}})
