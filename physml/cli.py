"""The ``physml`` command: ``demo``, ``data list``, ``data generate NAME`` and one group per domain.

A domain group has ``train NAME`` for each of its recipes (alias ``train-NAME``) and one command per
:class:`training.recipe.Command` (``evaluate``, ``rollout``, ``nowcast``; per task where a domain has several:
``evaluate calo``, alias ``evaluate-calo``). Every option is generated from the code it configures
(:mod:`physml.flags`). ``physml DOMAIN train --model NAME`` (the form before models were subcommands) still
works; without ``--model`` it trains the domain's first recipe.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from datasets import registry
from datasets.atomic import atomic_open
from physml import domains
from physml.flags import add_call_flags, add_run_flags
from training import distributed
from training.allocator import retain_freed_memory
from training.recipe import Command, Recipe, train
from training.report import Report

_FORMAT = argparse.RawDescriptionHelpFormatter
RECORD = "generate.json"  # a generated folder's dataset name and options: what --resume must match
RUN_ONLY = ("workers", "progress")  # options that do not change what a generator writes


def _data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="list and generate datasets", description="Datasets of every domain.")
    data_sub = data.add_subparsers(dest="data_command", metavar="{list,generate,import}", required=True)
    listing = data_sub.add_parser("list", help="list the registered datasets")
    listing.set_defaults(run=_list_datasets)
    gen = data_sub.add_parser("generate", help="generate a dataset with its domain's solver",
                              description="Generate a dataset; `physml data generate NAME --help` lists its options.")
    names = gen.add_subparsers(dest="name", metavar="NAME", required=True)
    for spec in registry.all_datasets():
        p = names.add_parser(spec.name, help=spec.description, description=spec.generate.__doc__,
                             formatter_class=_FORMAT)
        p.add_argument("--out", type=Path, default=None, help=f"output folder (default: runs/data/{spec.name})")
        p.add_argument("--resume", action="store_true",
                       help=f"finish an interrupted generation in --out (same options; checked against {RECORD})")
        options = add_call_flags(p, spec.generate, skip=("out_dir",))
        p.set_defaults(run=lambda args, spec=spec, options=options: _generate(
            spec.name, spec.generate, args.out or Path("runs/data") / spec.name, options(args), args.resume))
    imp = data_sub.add_parser("import", help="import a dataset in one of the field's formats",
                              description="Convert the field's dataset files into the suite's schemas; "
                                          "`physml data import NAME --help` lists the options.")
    names = imp.add_subparsers(dest="name", metavar="NAME", required=True)
    for spec in registry.all_imports():
        p = names.add_parser(spec.name, help=spec.description, formatter_class=_FORMAT,
                             description=(inspect.getdoc(spec.run) or "").split("\nArgs:")[0])
        p.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
        options = add_call_flags(p, spec.run, skip=("out_dir",))
        p.set_defaults(run=lambda args, spec=spec, options=options: _generate(spec.name, spec.run, args.out,
                                                                              options(args)))


def _list_datasets(args: argparse.Namespace) -> None:
    print(f"{'name':<20} {'domain':<8} {'schema':<24} description")
    for spec in registry.all_datasets():
        print(f"{spec.name:<20} {spec.domain:<8} {spec.schema:<24} {spec.description}")
    print("\nformats of the field (physml data import NAME SRC --out DIR):")
    for spec in registry.all_imports():
        print(f"{spec.name:<20} {spec.domain:<8} {spec.schema:<24} {spec.description}")


def _generate(name: str, make: Callable[..., list[Path]], out: Path, options: dict,
              resume: bool | None = None) -> None:
    """Write a dataset into ``out``, new or empty, recording the request in ``out/generate.json``; with
    ``resume``, finish an interrupted generation of the same request there (generators keep the parts they
    find, seeded by index; None: the command offers no --resume). Never mixes two writes in one folder."""
    request = {"dataset": name} | {k: str(v) if isinstance(v, Path) else v for k, v in options.items()
                                   if k not in RUN_ONLY}
    record = out / RECORD
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not resume:
            hint = "" if resume is None else ", or pass --resume to finish an interrupted generation"
            raise ValueError(f"{out}: exists and is not an empty folder; remove it or give another --out{hint}")
        if not record.is_file():
            raise ValueError(f"{out}: --resume needs the {RECORD} that `physml data generate` writes first; this "
                             "folder has none")
        if json.loads(record.read_text()) != request:
            raise ValueError(f"{out}: --resume finishes only the generation recorded in {RECORD}, with the same "
                             "dataset and options; this folder holds another one")
    else:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(record) as fh:
            json.dump(request, fh, indent=1)
    t0 = time.perf_counter()
    try:
        files = make(out_dir=out, **options)
    except BaseException:
        if list(out.iterdir()) == [record]:  # nothing written: leave no trace
            record.unlink()
        raise
    print(f"wrote {len(files)} files to {out} in {time.perf_counter() - t0:.1f} s:")
    for f in files:
        print(f"  {f}")


def _train_commands(verbs: argparse._SubParsersAction, recipes: list[Recipe]) -> None:
    group = verbs.add_parser("train", help=f"train a model: {', '.join(r.name for r in recipes)}",
                             description="Train a model; `train NAME --help` lists its options.")
    names = group.add_subparsers(dest="recipe", metavar="MODEL", required=True)
    for recipe in recipes:
        for sub, name, summary in ((names, recipe.name, recipe.summary), (verbs, f"train-{recipe.name}", None)):
            p = sub.add_parser(name, description=inspect.getmodule(recipe.run_type).__doc__, formatter_class=_FORMAT,
                               **({"help": summary} if summary else {}))  # aliases stay out of the listing
            build = add_run_flags(p, recipe.run_type)
            p.set_defaults(run=lambda args, recipe=recipe, build=build: _train(recipe, build(args)))


def _train(recipe: Recipe, run: object) -> None:
    metrics = train(recipe, run)
    if distributed.is_main():
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k not in ("lr", "grad_norm"))
        print(f"last evaluation: {shown or 'none'}; run folder {run.trainer.run_dir}")


def _commands(verbs: argparse._SubParsersAction, command: Command) -> None:
    if not command.tasks:
        _function_parser(verbs, command.verb, command.summary, command.run)
        return
    group = verbs.add_parser(command.verb, help=command.summary, description=command.summary)
    tasks = group.add_subparsers(dest="task", metavar="TASK", required=True)
    for task, fn in command.tasks.items():
        _function_parser(tasks, task, f"{command.verb} {task}", fn)
        _function_parser(verbs, f"{command.verb}-{task}", None, fn)


def _function_parser(sub: argparse._SubParsersAction, name: str, summary: str | None, fn: Callable) -> None:
    p = sub.add_parser(name, description=(inspect.getdoc(fn) or "").split("\nArgs:")[0], formatter_class=_FORMAT,
                       **({"help": summary} if summary else {}))
    options = add_call_flags(p, fn)
    p.set_defaults(run=lambda args: _show(fn(**options(args))))


def _show(result: object) -> None:
    if isinstance(result, Report):
        print(result.to_markdown())
        print(f"table.md, metrics.json and pictures in {result.info.get('out', '.')}")
    elif result is not None:
        print(f"wrote {result}")


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
    _models_commands(sub)
    _scaling_commands(sub)
    _inspect_commands(sub)
    for name, app in domains.apps().items():
        group = sub.add_parser(name, help=domains.describe(name), description=domains.describe(name))
        verbs = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
        if getattr(app, "RECIPES", None):
            _train_commands(verbs, app.RECIPES)
        for command in getattr(app, "COMMANDS", []):
            _commands(verbs, command)
    return parser


def _models_commands(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("models", help="list the pretrained models that ship with physml",
                           description="Pretrained reference models (model cards: docs/models.md).")
    verbs = group.add_subparsers(dest="models_command", metavar="{list}", required=True)
    verbs.add_parser("list", help="list the shipped models").set_defaults(run=_list_models)


def _list_models(args: argparse.Namespace) -> None:
    print(f"{'name':<20} {'domain':<8} {'minutes':>7}  headline metrics; summary")
    for domain, cards in domains.pretrained().items():
        for name, card in cards.items():
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in card.metrics.items())
            print(f"{name:<20} {domain:<8} {card.training_minutes:>7.1f}  {metrics}; {card.summary}")


def _scaling_commands(sub: argparse._SubParsersAction) -> None:
    from training import scaling

    group = sub.add_parser("scaling", help="scaling laws of training runs (Chinchilla, Kaplan, routed models)",
                           description=(scaling.__doc__ or "").split("\n")[0])
    verbs = group.add_subparsers(dest="scaling_command", metavar="COMMAND", required=True)
    _function_parser(verbs, "fit", "fit scaling laws to a results CSV", scaling.fit)
    sweep = verbs.add_parser("sweep", help="train a grid of model and data sizes into results.csv",
                             description="Train a grid of model sizes x training samples with the run protocol.")
    tasks = sweep.add_subparsers(dest="task", metavar="TASK", required=True)
    for app in domains.apps().values():
        for name, task in getattr(app, "SCALING", {}).items():
            _function_parser(tasks, name, f"sweep {name}", scaling.sweep_command(task))


def _inspect_commands(sub: argparse._SubParsersAction) -> None:
    from backbones import induction

    group = sub.add_parser("inspect", help="interpretability studies (induction heads)",
                           description="Interpretability studies on the shared backbones (docs/interpretability.md).")
    verbs = group.add_subparsers(dest="inspect_command", metavar="COMMAND", required=True)
    _function_parser(verbs, "induction-heads", "induction heads form in a 2-layer attention-only transformer",
                     induction.run)


def _model_flag(argv: list[str]) -> list[str]:
    """``DOMAIN train [--model NAME] ...`` -> ``DOMAIN train NAME ...`` (NAME: the domain's first recipe)."""
    if len(argv) < 2 or argv[1] != "train":
        return argv
    recipes = [r.name for r in getattr(domains.apps().get(argv[0]), "RECIPES", [])]
    rest = argv[2:]
    if not recipes or (rest and (rest[0] in recipes or rest[0] in ("-h", "--help"))):
        return argv
    name = recipes[0]
    if "--model" in rest and rest.index("--model") + 1 < len(rest):
        at = rest.index("--model")
        name, rest = rest[at + 1], rest[:at] + rest[at + 2:]
    return argv[:2] + [name] + rest


def main(argv: list[str] | None = None) -> int:
    """Run a command. A user error (bad input: ``ValueError``; a file problem: ``OSError``; a missing extra:
    ``ImportError``) prints one line and exits 2; Ctrl-C exits 130 with one line (training has saved a
    checkpoint); anything else is a bug: the traceback, a request to report it, exit 1."""
    parser = build_parser()
    args = parser.parse_args(_model_flag(list(sys.argv[1:] if argv is None else argv)))
    retain_freed_memory()  # training, rollouts and evaluation reuse large tensors (training/allocator.py)
    try:
        args.run(args)
    except (ValueError, OSError, ImportError) as err:
        print(f"physml: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("physml: interrupted (a training run saved a checkpoint: continue it with --resume)", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print("physml: internal error: this is a bug in physml; please report it with the traceback above",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
