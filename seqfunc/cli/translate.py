"""``seqfunc translate RUN "i lost ."``: translate sentences with a trained translation run;
``seqfunc translate RUN --eval test``: corpus BLEU on a held-out split."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "translate",
        help="translate sentences, or score BLEU, with a trained translation run",
        description="Translate each SENTENCE (or, with '-', each line of standard input) with a "
        "translation run (e.g. seqfunc train fra-eng). Words outside the source vocabulary are "
        "read as <unk> (a note says which). --eval SPLIT prints corpus BLEU (sacrebleu) on that "
        "held-out split instead.",
    )
    p.add_argument("run", help="run folder written by seqfunc train")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help='e.g. "i lost ." ("-": stdin)')
    p.add_argument("--beam", type=int, default=4, help="beam width (1 = greedy; default 4)")
    p.add_argument(
        "--eval",
        metavar="SPLIT",
        default=None,
        help="score corpus BLEU on a split (val or test) instead of translating",
    )
    p.add_argument("--limit", type=int, default=None, help="--eval: only the first N pairs")
    p.add_argument("--examples", type=int, default=5, help="--eval: pairs to show (default 5)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc.cli import UsageError
    from seqfunc.contracts import required
    from seqfunc.inference.translate import evaluate_bleu, translate_ids
    from seqfunc.runs.load import load_run

    if args.beam < 1:
        raise UsageError(f"--beam must be >= 1, got {args.beam}")
    if args.eval is None and not args.sentences:
        raise UsageError("give at least one sentence to translate (or --eval SPLIT)")
    loaded = load_run(args.run, device=args.device, task="seq2seq")
    dataset, model = loaded.dataset, loaded.model
    if args.eval is not None:
        if not hasattr(dataset, "texts"):
            raise UsageError(
                f"--eval: dataset {type(dataset).name!r} of {args.run} has no texts(split) "
                "of sources and references to score"
            )
        if args.eval not in dataset.splits or args.eval == "train":
            raise UsageError(
                f"--eval {args.eval!r}: choose a held-out split: "
                f"{', '.join(s for s in dataset.splits if s != 'train')}"
            )
        result = evaluate_bleu(
            model,
            loaded.params,
            dataset,
            args.eval,
            beam=args.beam,
            limit=args.limit,
            device=args.device,
        )
        for source, hypothesis, reference in result["examples"][: args.examples]:
            print(f"{source}\n  -> {hypothesis}\n     (reference: {reference})")
        print(
            f"\ncorpus BLEU on {result['pairs']:,} {args.eval} pairs (beam {args.beam}): "
            f"{result['bleu']:.2f}"
        )
        print(
            json.dumps(
                {
                    "split": args.eval,
                    "pairs": result["pairs"],
                    "beam": args.beam,
                    "bleu": round(result["bleu"], 2),
                }
            )
        )
        return 0

    sentences = args.sentences
    if sentences == ["-"]:
        sentences = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    encode_source = required(dataset, "encode_source", "seqfunc translate")
    sources = []
    for i, sentence in enumerate(sentences, start=1):
        where = f"sentence {i} ({sentence!r})" if len(sentences) > 1 else repr(sentence)
        try:
            sources.append(encode_source(sentence))
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
        unknown = dataset.unknown_words(sentence) if hasattr(dataset, "unknown_words") else ()
        if unknown:
            print(
                f"note: {where}: not in the vocabulary, read as <unk>: {', '.join(unknown)}",
                file=sys.stderr,
            )
    for translation in translate_ids(
        model, loaded.params, dataset, sources, beam=args.beam, device=args.device
    ):
        print(translation)
    return 0
