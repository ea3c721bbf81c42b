"""``seqfunc import FOLDER --out RUN``: a Hugging Face model folder becomes a run folder that
``generate``, ``predict`` and ``export`` take."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    from seqfunc.pretrained.architectures import supported_names
    from seqfunc.pretrained.importer import DTYPES

    p = subparsers.add_parser(
        "import",
        help="turn a Hugging Face model folder into a run folder",
        description="Read a Hugging Face folder (config.json; model.safetensors, a sharded "
        "model.safetensors.index.json or a weights-only pytorch_model.bin; tokenizer.json) and "
        "write a run folder: config, parameters, tokenizer. No code from the folder runs. "
        f"Architectures: {', '.join(supported_names())}.",
    )
    p.add_argument("folder", help="the Hugging Face folder (already on disk)")
    p.add_argument("--out", required=True, metavar="RUN", help="the run folder to write (new)")
    p.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default=None,
        help="cast the weights (default: keep each tensor's stored dtype, e.g. bf16)",
    )
    p.add_argument(
        "--byte-tokenizer",
        action="store_true",
        help="without a tokenizer.json, use UTF-8 bytes as token ids 0..255",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc.pretrained.importer import import_folder

    import_folder(
        args.folder,
        args.out,
        dtype=args.dtype,
        byte_tokenizer=args.byte_tokenizer,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(f"generate with it: seqfunc generate {args.out} --prompt TEXT --temperature 0")
    return 0
