"""``seqfunc predict RUN TEXT``: decode one input with a trained seq2seq run."""

from __future__ import annotations

import argparse

import torch


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="predict the output for one input with a trained run",
        epilog='An input that starts with "-" goes after "--": seqfunc predict RUN -- "-12+3"',
    )
    p.add_argument("run", help="run folder written by seqfunc train")
    p.add_argument("text", help='the input, e.g. "123+123"')
    p.add_argument("--beam", type=int, default=1, help="beam width (1 = greedy)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc.cli import UsageError
    from seqfunc.contracts import decode_target, max_target_len, required
    from seqfunc.decode import beam_search
    from seqfunc.run import load_run

    if args.beam < 1:
        raise UsageError(f"--beam must be >= 1, got {args.beam}")
    loaded = load_run(args.run, device=args.device, task="seq2seq")
    dataset, model = loaded.dataset, loaded.model
    encode_source = required(dataset, "encode_source", "seqfunc predict")
    try:
        ids = encode_source(args.text)
    except ValueError as exc:
        raise UsageError(f"input {args.text!r}: {exc}") from None
    src = torch.tensor([ids], device=args.device)
    out = beam_search(
        model, loaded.params, src, bos_id=dataset.bos_id, eos_id=dataset.eos_id,
        pad_id=dataset.pad_id, max_len=max_target_len(dataset), beam=args.beam,
    )
    print(decode_target(dataset, out[0].tolist()))
    return 0
