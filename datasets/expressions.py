"""The expression language of data configs (``new_variables``, ``selection``): a small, safe subset of Python.

Data configs travel with data files between people, so their expressions never reach Python's ``eval``. An
expression is parsed with :mod:`ast` and checked against a whitelist when the config is read; evaluation
walks the checked tree. Allowed:

- numbers, ``True``/``False``, ``np.pi``, ``np.e``, and the names of the config's features;
- arithmetic ``+ - * / // % **``, unary ``- + ~``, bitwise ``& | ^`` (element-wise and/or/xor on masks),
  comparisons (chained ones mean ``(a < b) & (b < c)``);
- subscripts with integers and slices (``x[:, :2]``, ``x[:, 0]``);
- calls of the functions in :data:`NUMPY` (``np.hypot(px, py)``) and :data:`AWKWARD` (``ak.num(px)``), with
  positional arguments and constant keyword arguments (``axis=1``).

Anything else (attribute chains, dunder names, lambdas, comprehensions, strings, ``and``/``or``, imports) is
refused with a :class:`ValueError` naming the config and the key.
"""
from __future__ import annotations

import ast
import operator
from collections.abc import Iterable

import awkward as ak
import numpy as np

NUMPY = frozenset({"abs", "absolute", "sqrt", "cbrt", "square", "exp", "expm1", "log", "log1p", "log2", "log10",
                   "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh",
                   "arccosh", "arctanh", "hypot", "maximum", "minimum", "clip", "where", "sign", "floor", "ceil",
                   "round", "power", "isfinite", "isnan", "logical_and", "logical_or", "logical_not"})
AWKWARD = frozenset({"num", "sum", "prod", "max", "min", "mean", "any", "all", "count", "count_nonzero", "firsts",
                     "fill_none", "pad_none", "flatten", "argmax", "argmin", "argsort", "sort", "local_index",
                     "zeros_like", "ones_like", "where"})
CONSTANTS = {"pi": np.pi, "e": np.e}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.BitAnd: operator.and_,
           ast.BitOr: operator.or_, ast.BitXor: operator.xor}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_MODULES = {"np": (np, NUMPY), "ak": (ak, AWKWARD)}


class Expression:
    """A checked expression; ``evaluate(fields)`` computes it over named arrays.

    Args:
        text: the expression.
        names: the feature names it may use.
        where: what to name in errors (``"jets.yaml: new_variables.pt"``).
    """

    def __init__(self, text: str, names: Iterable[str], where: str) -> None:
        self.text, self.where, self.names = text, where, frozenset(names)
        if not isinstance(text, str):
            raise ValueError(f"{where}: expected an expression (a string), got {text!r}")
        try:
            self.tree = ast.parse(text, mode="eval").body
        except SyntaxError as err:
            raise ValueError(f"{where}: {text!r} is not an expression ({err.msg})") from None
        self._check(self.tree)

    def _refuse(self, node: ast.AST, what: str) -> None:
        raise ValueError(f"{self.where}: {self.text!r}: {what} is not allowed in a data config expression "
                         f"({ast.unparse(node)!r}); see datasets/expressions.py")

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float, bool):
                self._refuse(node, f"a {type(node.value).__name__} constant")
        elif isinstance(node, ast.Name):
            if node.id not in self.names:
                known = ", ".join(sorted(self.names)) or "none"
                raise ValueError(f"{self.where}: {self.text!r} uses {node.id!r}, which is not a feature "
                                 f"(features: {known})")
        elif isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == "np" and node.attr in CONSTANTS):
                self._refuse(node, "an attribute other than np.pi / np.e")
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left), self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            self._check(node.operand)
        elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            for part in (node.left, *node.comparators):
                self._check(part)
        elif isinstance(node, ast.Subscript):
            self._check(node.value)
            self._check_index(node.slice)
        elif isinstance(node, ast.Call):
            self._check_call(node)
        else:
            self._refuse(node, f"{type(node).__name__}")

    def _check_index(self, node: ast.AST) -> None:
        if isinstance(node, ast.Tuple):
            for part in node.elts:
                self._check_index(part)
        elif isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                if part is not None:
                    self._check_index(part)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            self._check_index(node.operand)
        elif not (isinstance(node, ast.Constant) and type(node.value) is int):
            self._refuse(node, "an index other than integers and slices")

    def _check_call(self, node: ast.Call) -> None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in _MODULES
                and func.attr in _MODULES[func.value.id][1]):
            self._refuse(node, "a call of anything but the listed np./ak. functions")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self._refuse(arg, "*args")
            self._check(arg)
        for keyword in node.keywords:
            if keyword.arg is None:
                self._refuse(node, "**kwargs")
            value = keyword.value
            if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
                value = value.operand
            if not (isinstance(value, ast.Constant) and type(value.value) in (int, float, bool, type(None))):
                self._refuse(keyword.value, "a keyword argument that is not a constant")

    def evaluate(self, fields: dict) -> object:
        """The value over ``fields`` (name -> array); errors name the config and the key."""
        try:
            return self._eval(self.tree, fields)
        except Exception as err:
            raise ValueError(f"{self.where}: cannot evaluate {self.text!r}: {type(err).__name__}: {err}") from None

    def _eval(self, node: ast.AST, fields: dict) -> object:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return fields[node.id]
        if isinstance(node, ast.Attribute):
            return CONSTANTS[node.attr]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, fields), self._eval(node.right, fields))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, fields))
        if isinstance(node, ast.Compare):
            left, result = self._eval(node.left, fields), None
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, fields)
                part = _COMPARE[type(op)](left, right)
                result, left = part if result is None else result & part, right
            return result
        if isinstance(node, ast.Subscript):
            return self._eval(node.value, fields)[self._index(node.slice)]
        module = _MODULES[node.func.value.id][0]  # a checked call
        args = [self._eval(arg, fields) for arg in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        return getattr(module, node.func.attr)(*args, **kwargs)

    def _index(self, node: ast.AST) -> object:
        if isinstance(node, ast.Tuple):
            return tuple(self._index(part) for part in node.elts)
        if isinstance(node, ast.Slice):
            return slice(*(None if p is None else self._index(p) for p in (node.lower, node.upper, node.step)))
        return ast.literal_eval(node)
