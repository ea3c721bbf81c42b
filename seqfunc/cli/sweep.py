"""``seqfunc sweep DATASET --grid lr=1e-3,3e-3 --grid weight_decay=0,0.1 --seeds 3``: a
hyperparameter grid times seeds, the members trained together in vmapped steps."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from seqfunc.errors import UsageError


def add_parser(subparsers) -> None:
    from seqfunc.cli import train

    flags = argparse.ArgumentParser(add_help=False)
    train.add_parser(flags.add_subparsers())  # the same training, model and data options
    p = subparsers.add_parser(
        "sweep",
        parents=[flags._subparsers._group_actions[0].choices["train"]],
        conflict_handler="resolve",
        help="train a hyperparameter grid x seeds in vmapped steps",
        description="Train every point of a grid of hyperparameters, each with several seeds, "
        "as one vmapped run (members that differ in shapes, e.g. model.d_model, train as "
        "separate vmapped jobs). Leaves a sweep folder: members/ (one run folder each), "
        "sweep.jsonl, sweep.png; prints mean +- std over seeds per point and the best point. "
        "Ctrl-C or SIGTERM writes a checkpoint and stops; --resume SWEEP continues it.",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="values of one hyperparameter: a training field (lr, weight_decay, b1, "
        "b2, momentum, clip_norm, lr_end share one vmapped step; others too, in "
        "separate jobs) or model.NAME / data.NAME; repeat for a product",
    )
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per grid point (default 1)")
    p.add_argument(
        "--max-members",
        type=int,
        default=None,
        metavar="K",
        help="at most K members per vmapped step (memory); the rest run after",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="sweep folder (default: sweeps/NAME-TIME)"
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="SWEEP",
        help="continue the sweep folder SWEEP (stopped by Ctrl-C, SIGTERM or a "
        "crash) with its saved config, grid and seeds",
    )
    p.set_defaults(func=run)


def parse_grid(texts: list[str]) -> dict[str, list]:
    """``["lr=1e-3,3e-3"]`` -> ``{"lr": [0.001, 0.003]}`` (values JSON when they parse)."""
    grid: dict[str, list] = {}
    for text in texts:
        name, sep, raw = text.partition("=")
        if not sep or not name or not raw:
            raise UsageError(f"--grid {text!r}: expected NAME=V1,V2,... (e.g. lr=1e-3,3e-3)")
        if name in grid:
            raise UsageError(f"--grid {name}: given twice")
        grid[name] = [_value(v) for v in raw.split(",")]
    if not grid:
        raise UsageError("no --grid given (e.g. --grid lr=1e-3,3e-3)")
    return grid


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run(args: argparse.Namespace) -> int:
    from seqfunc.cli.train import resolve_config
    from seqfunc.runs.distributed import launched_world
    from seqfunc.runs.sweep_folder import resume_sweep, run_sweep

    if getattr(args, "nproc", None) or launched_world() > 1:
        raise UsageError(
            "a sweep trains its members in one process (vmapped); it does not run "
            "data-parallel: drop --nproc / torchrun"
        )
    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}: need at least 1")
    if args.max_members is not None and args.max_members < 1:
        raise UsageError(f"--max-members {args.max_members}: need at least 1")
    if getattr(args, "tensorboard", None):
        raise UsageError(
            "--tensorboard: a sweep logs to sweep.jsonl and each member's "
            "metrics.jsonl, not to TensorBoard"
        )
    start = time.perf_counter()
    if args.resume is not None:
        if args.grid:
            raise UsageError(
                "--grid cannot be combined with --resume: the sweep folder's saved grid is used"
            )
        resume_sweep(args.resume)
        return _finished(args.resume, start)
    grid = parse_grid(args.grid)
    cfg = resolve_config(args)
    if getattr(args, "print_config", False):
        from seqfunc.cli.train import print_config

        print_config(cfg)  # the config every member starts from, before the grid
        return 0
    out = args.out or Path("sweeps") / f"{cfg.dataset}-{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_sweep(cfg, grid, range(args.seeds), out, max_members=args.max_members)
    return _finished(out, start)


def _finished(out: Path, start: float) -> int:
    print(f"\nsweep folder: {out}  ({(time.perf_counter() - start) / 60:.1f} min)")
    return 0
