"""``seqfunc experiment NAME [options]``: the studies that reproduce the seeds' comparisons.

Experiment modules are imported only when their name is chosen, so listing them is cheap."""

from __future__ import annotations

import argparse
import importlib

from seqfunc.experiments import EXPERIMENTS


def add_parser(subparsers) -> None:
    known = ", ".join(sorted(EXPERIMENTS)) or "none installed"
    p = subparsers.add_parser(
        "experiment",
        help="run a study (prints a table, writes JSON and plots)",
        description=f"Run a study. Experiments: {known}. "
        "`seqfunc experiment NAME --help` lists an experiment's options.",
    )
    p.add_argument("name", metavar="NAME", help=f"one of: {known}")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the experiment's own options")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc.cli import UsageError

    if args.name not in EXPERIMENTS:
        raise UsageError(
            f"unknown experiment {args.name!r}; known: {', '.join(sorted(EXPERIMENTS)) or 'none'}"
        )
    module = importlib.import_module(EXPERIMENTS[args.name])
    parser = argparse.ArgumentParser(
        prog=f"seqfunc experiment {args.name}", description=(module.__doc__ or "").strip()
    )
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(args.options)) or 0)
