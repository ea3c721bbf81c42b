"""``seqfunc export RUN --format hf --out FOLDER [--merge]``: a run folder as a Hugging Face folder that
``transformers``' ``from_pretrained`` loads."""

from __future__ import annotations

import argparse
import sys

FORMATS = ("hf",)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a run folder in another format (hf: a Hugging Face folder)",
        description="Write a run's model as a Hugging Face folder (config.json, "
        "model.safetensors, tokenizer.json when the run has one). Models that export: gpt2, "
        "llama.",
    )
    p.add_argument("run", help="the run folder (trained or imported)")
    p.add_argument("--format", choices=FORMATS, required=True, help="hf: Hugging Face")
    p.add_argument("--out", required=True, metavar="FOLDER", help="the folder to write (new)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="a LoRA run: write its adapters merged into the weights of its init_from run",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc.pretrained.exporter import export_run

    export_run(args.run, args.out, merge=args.merge, log=lambda line: print(line, file=sys.stderr))
    return 0
