"""Typed run configurations: dataclasses to JSON and back, and the comments that document their fields.

A run is a (nested) dataclass. ``to_dict`` writes it as plain JSON; ``from_dict`` reads it back checking
every key and type against the class (nested dataclasses, tuples, ``X | None``, lists and dicts), so a
``config.json`` edited by hand or written by another version fails with the field's dotted name instead of
building a wrong model. ``field_docs`` reads the ``# comment`` after each field in the class's source: the
one place a default is explained, shown by ``--help`` of the generated command line.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import re
import tokenize
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")
_FIELD = re.compile(r"^\s+(\w+)\s*:[^=]*(=.*)?$")  # an annotated assignment in a class body


def to_dict(config: object) -> dict:
    """The fields of a dataclass instance, recursively, as JSON-ready values (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """An instance of dataclass ``cls`` from ``data``; missing fields take their defaults.

    Args:
        cls: the dataclass.
        data: a mapping such as ``to_dict`` wrote.
        where: dotted name of ``data`` in the enclosing config, for the error messages.

    Raises:
        ValueError: on an unknown field or a value of the wrong type, naming the field.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where or cls.__name__}: expected an object of {cls.__name__} fields, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where or cls.__name__}: unknown field(s) {', '.join(unknown)} of {cls.__name__}")
    hints = type_hints(cls)
    values = {name: _convert(hints[name], value, f"{where}.{name}" if where else name)
              for name, value in data.items()}
    return cls(**values)


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass (string annotations evaluated in the class's module)."""
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(option, value, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value))) if args \
            else tuple(value)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {value!r}")
        return value
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if type(value) is not hint:
            raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    raise ValueError(f"{where}: cannot read a value of type {hint}")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: text}`` from the ``# comment`` that ends each field's line in the class body; empty where
    the source is not available."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    docs: dict[str, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            match = _FIELD.match(lines[token.start[0] - 1][:token.start[1]])
            if match:
                docs[match.group(1)] = token.string.lstrip("#").strip()
    return docs

