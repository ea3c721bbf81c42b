"""English -> French: the Transformer and the LSTM seq2seq, trained with their fra-eng recipes,
scored by corpus BLEU (sacrebleu) on the 2,000 held-out test pairs (at most 8 words each).

Each model is trained exactly as ``seqfunc train fra-eng [--model rnn-seq2seq]`` would (same
recipe, same seed), then decoded greedily and with beam 4. Wall time covers the whole
``fit`` (data, training, periodic evaluation, saving).

    python benchmarks/translation.py [--models transformer rnn-seq2seq] \
        [--out runs/bench-translation]

Last line: one JSON object {model: {"train_s", "steps", "bleu_greedy", "bleu_beam4", ...}}.
Needs ``pip install seqfunc[translate]`` and the fra-eng pairs (``-d path=`` or the shared copy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from seqfunc import registry
from seqfunc.config import from_dict
from seqfunc.inference.translate import evaluate_bleu
from seqfunc.runs import TrainConfig, fit
from seqfunc.runs.load import load_run


def recipe(dataset: str, model: str) -> TrainConfig:
    cls = registry.get_dataset(dataset)
    fields = dict(cls.train_defaults)
    fields.update(getattr(cls, "model_recipes", {}).get(model, {}))
    return from_dict(TrainConfig, {**fields, "dataset": dataset, "model": model})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fra-eng")
    p.add_argument("--models", nargs="+", default=["transformer", "rnn-seq2seq"])
    p.add_argument("--out", type=Path, default=Path("runs/bench-translation"))
    p.add_argument("--beam", type=int, default=4)
    args = p.parse_args()

    results = {}
    for model in args.models:
        cfg = recipe(args.dataset, model)
        run_dir = args.out / model
        start = time.perf_counter()
        fit(
            cfg,
            run_dir,
            progress=False,
            log=lambda line, model=model: print(f"  [{model}] {line}", flush=True),
        )
        train_s = time.perf_counter() - start
        loaded = load_run(run_dir)
        greedy = evaluate_bleu(loaded.model, loaded.params, loaded.dataset, "test", beam=1)
        beam = evaluate_bleu(loaded.model, loaded.params, loaded.dataset, "test", beam=args.beam)
        results[model] = {
            "train_s": round(train_s, 1),
            "steps": cfg.steps,
            "batch_size": cfg.batch_size,
            "test_pairs": greedy["pairs"],
            "bleu_greedy": round(greedy["bleu"], 2),
            f"bleu_beam{args.beam}": round(beam["bleu"], 2),
            "run": str(run_dir),
            "examples": [list(e) for e in beam["examples"][:5]],
        }

    print(
        f"\n{'model':<14} {'train min':>10} {'steps':>7} {'BLEU greedy':>12} "
        f"{f'BLEU beam {args.beam}':>12}"
    )
    for model, r in results.items():
        print(
            f"{model:<14} {r['train_s'] / 60:>10.1f} {r['steps']:>7} {r['bleu_greedy']:>12.2f} "
            f"{r[f'bleu_beam{args.beam}']:>12.2f}"
        )
    for model, r in results.items():
        print(f"\n{model}, beam {args.beam}:")
        for source, hypothesis, reference in r["examples"]:
            print(f"  {source}  ->  {hypothesis}   (reference: {reference})")
    print(
        json.dumps({m: {k: v for k, v in r.items() if k != "examples"} for m, r in results.items()})
    )


if __name__ == "__main__":
    main()
