"""Deeper Transformers on the formula task: 1, 2, 3 blocks (assignment 003 question 1).

Trains the seq2seq Transformer with the same budget for each depth (encoder and decoder
blocks each) and reports training time, validation loss and accuracy.

    seqfunc experiment depth [--depths 1 2 3] [--steps 300]
"""

from __future__ import annotations

import argparse

from seqfunc.experiments.formula_study import (
    add_common_arguments,
    check_common,
    report,
    train_variant,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--depths",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        help="blocks in the encoder and in the decoder (default 1 2 3)",
    )
    add_common_arguments(parser, out="runs/experiment-depth", steps=300)


def run(args: argparse.Namespace) -> int:
    from seqfunc.errors import UsageError

    check_common(args)
    if any(d <= 0 for d in args.depths):
        raise UsageError(f"--depths must all be > 0, got {args.depths}")
    rows = []
    for depth in args.depths:
        rows.append(
            train_variant(
                args, f"{depth}-block", {"encoder_layers": depth, "decoder_layers": depth}
            )
        )
        print(
            f"  {depth} block(s): {rows[-1]['train_s']:.1f} s, val loss {rows[-1]['val_loss']:.4f}",
            flush=True,
        )
    report(args, f"depth: formula task, {args.steps} steps of {args.batch_size}", rows)
    return 0
