"""``seqfunc check MODEL`` / ``seqfunc check --dataset NAME``: the conformance suite.

For a model, the spec's invariants; for a dataset, the dataset contract's checks
(:mod:`seqfunc.testing.datasets`). One line per check (PASS / FAIL with the Hypothesis-shrunk
counterexample / SKIP and why); exit code 1 when any fails; the last line is one JSON object
``{"model" or "dataset": ..., "passed": [...], "failed": [...], "skipped": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from seqfunc.cli.options import parse_assignment
from seqfunc.config import typed_fields
from seqfunc.errors import UsageError


def add_parser(subparsers) -> None:
    from seqfunc.testing.invariants import INVARIANT_NAMES

    p = subparsers.add_parser(
        "check",
        help="check a model against the spec's invariants (property-based)",
        description="Run the invariants that apply to a model's task kinds on a tiny config: "
        + ", ".join(INVARIANT_NAMES)
        + ". Prints one line per invariant, a shrunk "
        "counterexample for each failure, and a JSON summary as the last line; exits 1 if any "
        "invariant fails.",
    )
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="model name (or dist:name), or a run folder: its model is checked",
    )
    p.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help="check this dataset against the dataset contract instead of a model",
    )
    p.add_argument(
        "-d",
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset config field for --dataset (default: its check_options)",
    )
    p.add_argument(
        "--task",
        action="append",
        default=None,
        help="check only this task kind (repeatable; default: all the model serves)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=INVARIANT_NAMES,
        default=None,
        help="run only this invariant (repeatable)",
    )
    p.add_argument(
        "--skip",
        action="append",
        choices=INVARIANT_NAMES,
        default=[],
        help="skip this invariant (repeatable)",
    )
    p.add_argument(
        "--no-compile",
        action="store_true",
        help="skip eager_equals_compiled (torch.compile takes ~30 s on a small CPU)",
    )
    p.add_argument(
        "--examples", type=int, default=15, help="Hypothesis examples per invariant (default 15)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the params checked")
    p.add_argument(
        "-m",
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model config field for the check model, e.g. -m d_model=32",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc import registry
    from seqfunc.cli import UsageError
    from seqfunc.testing import run_checks

    if args.examples < 1:
        raise UsageError(f"--examples={args.examples}: must be >= 1")
    if (args.model is None) == (args.dataset is None):
        raise UsageError(
            "name a model (seqfunc check MODEL) or a dataset (seqfunc check --dataset NAME)"
        )
    if args.dataset is not None:
        return run_dataset(args)
    args.model = model_of_run(args.model)
    model_cls = registry.get_model(args.model)
    unknown = sorted(set(args.task or ()) - set(model_cls.task_kinds))
    if unknown:
        raise UsageError(
            f"model {args.model!r} serves {', '.join(model_cls.task_kinds)}, "
            f"not {', '.join(unknown)}"
        )
    overrides = typed_fields(
        model_cls.Config,
        dict(parse_assignment(a) for a in args.model_option),
        where="-m model options",
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. torch's vmap fallback notices
        report = run_checks(
            model_cls,
            name=args.model,
            tasks=args.task,
            only=args.only,
            skip=args.skip,
            compile=not args.no_compile,
            max_examples=args.examples,
            seed=args.seed,
            overrides=overrides,
        )
    for result in report.results:
        print(result.line(), flush=True)
    print(
        f"{len(report.passed)} passed, {len(report.failed)} failed, {len(report.skipped)} "
        f"skipped in {time.perf_counter() - start:.1f}s"
    )
    print(json.dumps(report.to_dict()))
    return 1 if report.failed else 0


def model_of_run(name: str) -> str:
    """``name`` itself, or the model name of the run folder ``name`` names."""
    from pathlib import Path

    from seqfunc.runs import files
    from seqfunc.serialization import read_json

    folder = Path(name)
    if not (folder / files.CONFIG).is_file():
        return name
    model = read_json(folder / files.CONFIG).get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise UsageError(f"{folder / 'config.json'}: no model name (model.name)")
    return model["name"]


def run_dataset(args: argparse.Namespace) -> int:
    from seqfunc import registry
    from seqfunc.testing.datasets import check_dataset

    dataset_cls = registry.get_dataset(args.dataset)
    options = dict(parse_assignment(a) for a in args.data_option) if args.data_option else None
    start = time.perf_counter()
    report = check_dataset(
        dataset_cls, options=options, max_examples=args.examples, name=args.dataset
    )
    for result in report.results:
        print(result.line(), flush=True)
    print(
        f"{len(report.passed)} passed, {len(report.failed)} failed, {len(report.skipped)} "
        f"skipped in {time.perf_counter() - start:.1f}s"
    )
    print(
        json.dumps(
            {"dataset": args.dataset, **{k: v for k, v in report.to_dict().items() if k != "model"}}
        )
    )
    return 1 if report.failed else 0
