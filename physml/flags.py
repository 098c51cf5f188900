"""Command-line options generated from the code they configure: one source of defaults and help.

``add_run_flags`` turns a run dataclass (nested dataclasses flattened) into options: a field's name becomes
its flag (``batch_size`` -> ``--batch-size``), its default the option's default, and the ``# comment`` on
its line the help. A name used twice in one run is prefixed by its parent (``--model-schedule`` beside the
trainer's ``--schedule``); fields marked ``field(metadata={"cli": False})`` and dicts are not options.
``add_call_flags`` does the same for a function's parameters (an evaluator, a dataset generator), with help
from its docstring's ``Args:`` section: a parameter without a default is positional (a list defaulting to
``()`` an optional positional), a keyword-only one without a default a required option.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from training.config import field_docs, type_hints

# field names whose flags predate the run dataclasses
ALIASES = {"data_dir": "data", "n_steps": "message-passing-steps"}


@dataclass(frozen=True)
class _Leaf:
    path: tuple[str, ...]
    hint: Any
    default: Any
    help: str
    choices: tuple | None


def add_run_flags(parser: argparse.ArgumentParser, run_type: type) -> Callable[[argparse.Namespace], Any]:
    """Add one option per field of ``run_type``; returns ``args -> run`` (an instance of ``run_type``).

    Args:
        parser: where the options go.
        run_type: a dataclass, possibly nesting others.
    """
    leaves = list(_leaves(run_type, run_type(), ()))
    names = _flag_names(leaves)
    for leaf in leaves:
        _add(parser, names[leaf.path], "__".join(leaf.path), leaf.hint, leaf.default, leaf.help, leaf.choices)

    def build(args: argparse.Namespace) -> Any:
        given = {leaf.path: getattr(args, "__".join(leaf.path)) for leaf in leaves}
        return _construct(run_type(), (), given)
    return build


def add_call_flags(parser: argparse.ArgumentParser, fn: Callable, skip: tuple[str, ...] = ()) \
        -> Callable[[argparse.Namespace], dict]:
    """Add one option per parameter of ``fn`` (positional where it has no default); returns
    ``args -> keyword arguments of fn``.

    Args:
        parser: where the options go.
        fn: a function with annotated parameters.
        skip: parameters the caller supplies itself.
    """
    hints = typing.get_type_hints(fn)
    docs = arg_docs(fn)
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for p in params:
        hint = hints.get(p.name, type(p.default) if p.default is not p.empty else str)
        if p.default is p.empty and p.kind == p.KEYWORD_ONLY:
            _add(parser, "--" + p.name.replace("_", "-"), p.name, hint, None, docs.get(p.name, ""), None,
                 required=True)
        elif p.default is p.empty or _empty_tuple(p.default):
            _add_positional(parser, p.name, hint, docs.get(p.name, ""), optional=_empty_tuple(p.default))
        else:
            _add(parser, "--" + p.name.replace("_", "-"), p.name, hint, p.default, docs.get(p.name, ""), None)
    return lambda args: {p.name: _tuple_if(hints.get(p.name), getattr(args, p.name)) for p in params}


def _empty_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and not value


def arg_docs(fn: Callable) -> dict[str, str]:
    """``{parameter: text}`` from the ``Args:`` section of ``fn``'s docstring (Google style)."""
    doc = inspect.getdoc(fn) or ""
    section = re.search(r"^Args:\n((?:[ \t]+.*\n?|\n)*)", doc, re.MULTILINE)
    if not section:
        return {}
    docs: dict[str, str] = {}
    current = None
    for line in section.group(1).splitlines():
        match = re.match(r"^\s{2,4}(\w+)(?: \(.*?\))?:\s*(.*)$", line)
        if match:
            current = match.group(1)
            docs[current] = match.group(2)
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return docs


def _leaves(cls: type, instance: Any, path: tuple[str, ...]):
    hints, docs = type_hints(cls), field_docs(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli", True) is False:
            continue
        hint, value = hints[f.name], getattr(instance, f.name)
        if dataclasses.is_dataclass(hint):
            yield from _leaves(hint, value, path + (f.name,))
        elif _flaggable(hint):
            yield _Leaf(path + (f.name,), hint, value, docs.get(f.name, ""), f.metadata.get("choices"))


def _flaggable(hint: Any) -> bool:
    base = _strip_optional(hint)
    origin = typing.get_origin(base)
    if origin in (tuple, list):
        return all(a in (int, float, str, Ellipsis) for a in typing.get_args(base))
    return base in (int, float, str, bool) or origin is typing.Literal


def _flag_names(leaves: list[_Leaf]) -> dict[tuple[str, ...], str]:
    """Leaf name, unless two leaves share it: then the trainer's keeps it and the others take their path."""
    by_name: dict[str, list[_Leaf]] = {}
    for leaf in leaves:
        by_name.setdefault(ALIASES.get(leaf.path[-1], leaf.path[-1]), []).append(leaf)
    names = {}
    for name, group in by_name.items():
        trainer = [g for g in group if g.path[0] == "trainer"]
        for leaf in group:
            plain = len(group) == 1 or (len(trainer) == 1 and leaf is trainer[0])
            names[leaf.path] = "--" + (name if plain else "-".join(leaf.path)).replace("_", "-")
    return names


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _add(parser: argparse.ArgumentParser, flag: str, dest: str, hint: Any, default: Any, text: str,
         choices: tuple | None, required: bool = False) -> None:
    base = _strip_optional(hint)
    text = f"{text.rstrip('.')} " if text else ""
    shown = "none" if default is None else " ".join(map(str, default)) if isinstance(default, (tuple, list)) \
        else default
    kwargs: dict[str, Any] = {"dest": dest, "default": default,
                              "help": text.strip() or None if required else f"{text}(default: {shown})"}
    if base is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        return
    origin, args = typing.get_origin(base), typing.get_args(base)
    kwargs.update(metavar=dest.rsplit("__", 1)[-1].upper(), required=required)
    if origin is typing.Literal:
        kwargs.update(choices=args, type=type(args[0]), metavar=None)
    elif origin in (tuple, list):
        kwargs.update(nargs="+" if (origin is list or Ellipsis in args) else len(args), type=args[0])
    else:
        kwargs.update(type=base)
        if choices:
            kwargs.update(choices=choices, metavar=None)
    if _optional(hint) and "nargs" not in kwargs:
        kwargs["type"] = _or_none(kwargs["type"])
    parser.add_argument(flag, **kwargs)


def _add_positional(parser: argparse.ArgumentParser, name: str, hint: Any, text: str, optional: bool) -> None:
    base = _strip_optional(hint)
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin in (tuple, list):
        parser.add_argument(name, nargs="*" if optional else "+", type=args[0], help=text, default=[])
    else:
        parser.add_argument(name, type=base, help=text)


def _or_none(convert: Callable) -> Callable:
    def parse(text: str):
        return None if text.lower() == "none" else convert(text)
    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _tuple_if(hint: Any, value: Any) -> Any:
    return tuple(value) if typing.get_origin(_strip_optional(hint)) is tuple and value is not None else value


def _construct(default: Any, path: tuple[str, ...], given: dict[tuple[str, ...], Any]) -> Any:
    """A new instance of ``default``'s dataclass: options where given, nested dataclasses rebuilt the same
    way, other fields as in ``default``. Built through ``__init__``, so ``__post_init__`` sees the final
    values and list options become the tuples the annotations promise."""
    hints = type_hints(type(default))
    values = {}
    for f in dataclasses.fields(default):
        if not f.init:
            continue
        key, value = path + (f.name,), getattr(default, f.name)
        if key in given:
            value = _tuple_if(hints[f.name], given[key])
        elif dataclasses.is_dataclass(value):
            value = _construct(value, key, given)
        values[f.name] = value
    return type(default)(**values)
