"""The ``physml`` command: ``demo``, ``data list``, ``data generate NAME`` and one group per domain."""
from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

from datasets import registry
from physml import domains

_OWN_PARAMS = ("out_dir",)


def _add_generator_options(parser: argparse.ArgumentParser, spec: registry.DatasetSpec) -> None:
    """One ``--flag`` per keyword of the dataset's generator, typed by its default."""
    for name, param in inspect.signature(spec.generate).parameters.items():
        if name in _OWN_PARAMS or param.default is inspect.Parameter.empty:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(param.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=param.default)
        else:
            parser.add_argument(flag, type=type(param.default), default=param.default,
                                help=f"(default: {param.default})")


def _data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="list and generate datasets", description="Datasets of every domain.")
    data_sub = data.add_subparsers(dest="data_command", metavar="{list,generate}", required=True)
    listing = data_sub.add_parser("list", help="list the registered datasets")
    listing.set_defaults(run=_list_datasets)
    gen = data_sub.add_parser("generate", help="generate a dataset with its domain's solver",
                              description="Generate a dataset; `physml data generate NAME --help` lists its options.")
    names = gen.add_subparsers(dest="name", metavar="NAME", required=True)
    for spec in registry.all_datasets():
        p = names.add_parser(spec.name, help=spec.description, description=spec.generate.__doc__)
        p.add_argument("--out", type=Path, default=None, help=f"output folder (default: runs/data/{spec.name})")
        _add_generator_options(p, spec)
        p.set_defaults(run=_generate, spec=spec)


def _list_datasets(args: argparse.Namespace) -> None:
    print(f"{'name':<14} {'domain':<8} {'schema':<24} description")
    for spec in registry.all_datasets():
        print(f"{spec.name:<14} {spec.domain:<8} {spec.schema:<24} {spec.description}")


def _generate(args: argparse.Namespace) -> None:
    spec: registry.DatasetSpec = args.spec
    params = inspect.signature(spec.generate).parameters
    options = {k: v for k, v in vars(args).items() if k in params and k not in _OWN_PARAMS}
    out = args.out or Path("runs/data") / spec.name
    t0 = time.perf_counter()
    files = spec.generate(out, **options)
    print(f"wrote {len(files)} files to {out} in {time.perf_counter() - t0:.1f} s:")
    for f in files:
        print(f"  {f}")


def _demo(args: argparse.Namespace) -> None:
    from physml.demo import format_table, run_demo

    t0 = time.perf_counter()
    rows = run_demo(args.out, seed=args.seed)
    print()
    print(format_table(rows))
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; everything is in {args.out}/ "
          f"(summary.md, run folders with metrics.csv, loss.png and plots)")


def build_parser() -> argparse.ArgumentParser:
    domains.register_datasets()
    parser = argparse.ArgumentParser(prog="physml", description="physml: scientific machine learning by "
                                     "science domain, on shared graph, transformer and generative models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = sub.add_parser("demo", help="run every part of the suite end to end (a few minutes on 2 cores)",
                          description="Run every part of the suite that exists and print a summary table.")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    _data_commands(sub)
    for name, app in domains.apps().items():
        group = sub.add_parser(name, help=domains.describe(name), description=domains.describe(name))
        commands = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
        if app is not None and hasattr(app, "add_commands"):
            app.add_commands(commands)
        else:
            group.set_defaults(run=lambda args, name=name: print(f"the {name} domain has no commands yet"))
            commands.required = False
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, KeyError, ImportError) as err:
        print(f"physml: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
