"""What each algorithm's data are, as the CLRS benchmark encodes them (Velickovic et al. 2022).

Every quantity is a :class:`Feature`: its *stage* (an input, a hint, i.e. the algorithm's state after each step,
or an output), its *location* (one value per node, per ordered node pair, or per graph) and its *type*:

- ``scalar``: a real value;  ``mask``: 0/1;  ``mask_one``: exactly one node is marked (stored as that node's
  index);  ``pointer``: each node points to one node (stored as the target's index; a node with nothing to point
  to points to itself);  ``categorical``: one of ``categories`` classes (stored as the class index).

Names follow the benchmark's (``pi`` is a parent pointer, ``A`` the weighted adjacency, ``pos`` the node's
position scalar). Where a spec here leaves out one of the benchmark's hints it says so in docs/clrs.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Stage(str, Enum):
    INPUT = "input"
    HINT = "hint"
    OUTPUT = "output"


class Location(str, Enum):
    NODE = "node"
    EDGE = "edge"
    GRAPH = "graph"


class Type(str, Enum):
    SCALAR = "scalar"
    MASK = "mask"
    MASK_ONE = "mask_one"
    POINTER = "pointer"
    CATEGORICAL = "categorical"


@dataclass(frozen=True)
class Feature:
    stage: Stage
    location: Location
    type: Type
    categories: int = 0  # classes of a categorical feature


def _f(stage: str, location: str, type_: str, categories: int = 0) -> Feature:
    return Feature(Stage(stage), Location(location), Type(type_), categories)


_GRAPH_INPUTS = {"pos": _f("input", "node", "scalar"), "A": _f("input", "edge", "scalar"),
                 "adj": _f("input", "edge", "mask")}
_SOURCE = {"s": _f("input", "node", "mask_one")}
_ARRAY_INPUTS = {"pos": _f("input", "node", "scalar"), "key": _f("input", "node", "scalar")}
_DFS_HINTS = {"color": _f("hint", "node", "categorical", 3), "s": _f("hint", "node", "mask_one")}

SPECS: dict[str, dict[str, Feature]] = {
    "bfs": {**_GRAPH_INPUTS, **_SOURCE, "pi": _f("output", "node", "pointer"),
            "reach_h": _f("hint", "node", "mask"), "pi_h": _f("hint", "node", "pointer")},
    "dfs": {**_GRAPH_INPUTS, "pi": _f("output", "node", "pointer"), "pi_h": _f("hint", "node", "pointer"),
            **_DFS_HINTS, "d": _f("hint", "node", "scalar"), "f": _f("hint", "node", "scalar"),
            "time": _f("hint", "graph", "scalar")},
    "topological_sort": {**_GRAPH_INPUTS, "topo": _f("output", "node", "pointer"),
                         "topo_head": _f("output", "node", "mask_one"), "topo_h": _f("hint", "node", "pointer"),
                         "topo_head_h": _f("hint", "node", "mask_one"), **_DFS_HINTS},
    "bellman_ford": {**_GRAPH_INPUTS, **_SOURCE, "pi": _f("output", "node", "pointer"),
                     "pi_h": _f("hint", "node", "pointer"), "d": _f("hint", "node", "scalar"),
                     "msk": _f("hint", "node", "mask")},
    "dijkstra": {**_GRAPH_INPUTS, **_SOURCE, "pi": _f("output", "node", "pointer"),
                 "pi_h": _f("hint", "node", "pointer"), "d": _f("hint", "node", "scalar"),
                 "mark": _f("hint", "node", "mask"), "in_queue": _f("hint", "node", "mask"),
                 "u": _f("hint", "node", "mask_one")},
    "mst_prim": {**_GRAPH_INPUTS, **_SOURCE, "pi": _f("output", "node", "pointer"),
                 "pi_h": _f("hint", "node", "pointer"), "key": _f("hint", "node", "scalar"),
                 "mark": _f("hint", "node", "mask"), "in_queue": _f("hint", "node", "mask"),
                 "u": _f("hint", "node", "mask_one")},
    "insertion_sort": {**_ARRAY_INPUTS, "pred": _f("output", "node", "pointer"),
                       "pred_h": _f("hint", "node", "pointer"), "i": _f("hint", "node", "mask_one"),
                       "j": _f("hint", "node", "mask_one")},
    "binary_search": {**_ARRAY_INPUTS, "target": _f("input", "graph", "scalar"),
                      "return": _f("output", "node", "mask_one"), "low": _f("hint", "node", "mask_one"),
                      "high": _f("hint", "node", "mask_one"), "mid": _f("hint", "node", "mask_one")},
}


def features(algorithm: str, stage: Stage) -> dict[str, Feature]:
    """The features of one stage of an algorithm, in spec order."""
    return {name: f for name, f in SPECS[algorithm].items() if f.stage is stage}
