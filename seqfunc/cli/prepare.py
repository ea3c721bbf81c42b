"""``seqfunc prepare text -d path=... --out DIR``: a corpus to token shards for training."""

from __future__ import annotations

import argparse
from pathlib import Path

from seqfunc.cli.options import parse_assignment

#: Datasets that read a prepared folder.
PREPARABLE = ("text",)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="tokenize a large text corpus once into memory-mapped shards",
        description="Tokenize a text file, a folder of them or a glob into token shards and a "
        "manifest.json in DIR, reading the input in chunks (constant memory at any size). "
        "Then: seqfunc train text -d path=DIR -d unit=UNIT.",
    )
    p.add_argument("dataset", choices=PREPARABLE, help="the dataset that reads the folder: text")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the folder to write (new, empty, or left by an interrupted prepare)",
    )
    p.add_argument(
        "-d",
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="path=FILE_OR_FOLDER_OR_GLOB (required), unit=char|byte|subword, "
        "vocab_size=N, val_fraction=F, sample_mb=MB, shard_tokens=N",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc.config import from_dict, typed_fields
    from seqfunc.data.prepare import PrepareConfig, prepare

    options = typed_fields(
        PrepareConfig, dict(parse_assignment(a) for a in args.data_option), where="prepare options"
    )
    config = from_dict(PrepareConfig, options, where="prepare options")
    manifest = prepare(config, args.out, progress=not args.no_progress)
    counts = manifest["tokens"]
    shards = sum(len(s) for s in manifest["shards"].values())
    mb = manifest["input_bytes"] / 2**20
    print(
        f"{args.out}: {counts['train']:,} training and {counts['val']:,} validation "
        f"{config.unit} tokens ({manifest['dtype']}) in {shards} shard(s), from {mb:.1f} MB "
        f"in {manifest['seconds']:.1f} s"
    )
    unit = "" if config.unit == "char" else f" -d unit={config.unit}"
    size = f" -d vocab_size={config.vocab_size}" if config.unit == "subword" else ""
    print(f"train on it: seqfunc train text -d path={args.out}{unit}{size}")
    return 0
