"""Attention kernels compared on the formula task: dot vs additive and the others
(assignment 003 question 2, assignment 004 simple vs full self-attention).

Trains the seq2seq Transformer with each kernel for the same number of steps and reports
training time, validation loss, token accuracy and exact match.

    seqfunc experiment attention-kind [--kinds dot additive ...] [--steps 300]
"""

from __future__ import annotations

import argparse

from seqfunc.experiments.formula_study import (
    add_common_arguments,
    check_common,
    report,
    train_variant,
)

#: name shown in the table -> the model's ``attention`` option
KINDS = {
    "dot": "dot",
    "additive": "additive",
    "simple": "simple",
    "linear": "linear",
    "window": {"kind": "window", "window": 4},
    "chunked": {"kind": "chunked", "chunk": 4},
    "full": "full",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["dot", "additive", "simple", "linear", "window", "chunked"],
        help=f"kernels to compare (known: {', '.join(KINDS)})",
    )
    add_common_arguments(parser, out="runs/experiment-attention-kind", steps=300)


def run(args: argparse.Namespace) -> int:
    from seqfunc.errors import UsageError

    check_common(args)
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"--kinds: unknown {', '.join(unknown)}; known: {', '.join(KINDS)}")
    rows = []
    for kind in args.kinds:
        rows.append(train_variant(args, kind, {"attention": KINDS[kind]}))
        print(
            f"  {kind}: {rows[-1]['train_s']:.1f} s, val loss {rows[-1]['val_loss']:.4f}",
            flush=True,
        )
    report(args, f"attention kind: formula task, {args.steps} steps of {args.batch_size}", rows)
    return 0
