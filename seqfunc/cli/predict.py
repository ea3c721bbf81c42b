"""``seqfunc predict RUN [TEXT...] [--file PATH|-] [--json]``: what a trained run answers, for
every task kind (a class with its probability, a decoded target, a continuation)."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict with a trained run (classification, seq2seq or language model)",
        description="Predict for each input with a trained run: classification prints the class "
        "and its probability, seq2seq the decoded output, a language model the continuation. "
        "Inputs are the TEXT arguments, else the lines of --file (- or piped stdin: one input a "
        "line), run in batches.",
        epilog='An input that starts with "-" goes after "--": seqfunc predict RUN -- "-12+3"',
    )
    p.add_argument("run", help="run folder written by seqfunc train")
    p.add_argument("text", nargs="*", help='the inputs, e.g. "123+123"')
    p.add_argument(
        "--file",
        default=None,
        metavar="PATH",
        help="read the inputs from PATH, one a line (- for stdin)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object a line: input and label + probabilities / output / continuation",
    )
    p.add_argument("--beam", type=int, default=1, help="seq2seq: beam width (1 = greedy)")
    p.add_argument(
        "--tokens", type=int, default=100, help="language model: new tokens (default 100)"
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=0.0,
        help="language model: 0 = greedy (default), else sample",
    )
    p.add_argument(
        "--top-k", type=int, default=None, help="language model: sample among the k likeliest"
    )
    p.add_argument("--seed", type=int, default=0, help="language model: the sampling seed")
    p.add_argument("--batch-size", type=int, default=64, help="inputs per model call (default 64)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run, intermixed="text")


def read_inputs(args: argparse.Namespace) -> list[str]:
    """The TEXT arguments, or the non-empty lines of ``--file`` / piped stdin."""
    from seqfunc.cli import UsageError

    if args.text and args.file is not None:
        raise UsageError("give the inputs as TEXT arguments or with --file, not both")
    if args.text:
        return list(args.text)
    if args.file is None and sys.stdin.isatty():
        raise UsageError("no input: give TEXT arguments, --file PATH, or pipe lines into stdin")
    if args.file in (None, "-"):
        content = sys.stdin.read()
    else:
        from seqfunc.data.text_files import read_utf8

        try:
            content = read_utf8(args.file)
        except OSError as exc:
            raise UsageError(f"--file {args.file}: {exc.strerror or exc}") from None
    lines = [line for line in content.splitlines() if line.strip()]
    if not lines:
        raise UsageError(f"--file {args.file or '-'}: no input lines")
    return lines


def run(args: argparse.Namespace) -> int:
    from seqfunc.inference.predict import plain_text
    from seqfunc.runs.load import load_run

    texts = read_inputs(args)
    loaded = load_run(args.run, device=args.device)
    predictions = loaded.predict(
        texts,
        beam=args.beam,
        tokens=args.tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    for prediction in predictions:
        print(json.dumps(prediction, ensure_ascii=False) if args.json else plain_text(prediction))
    return 0
