"""Language-model evaluation: the output layer on chunks of positions vs ``apply`` on chunks of rows.

WikiText-2's default model (a 2-layer, 160-wide GPT, 12,001 words, random weights: speed does
not depend on them) evaluated on the first ``--batches`` validation batches of 80 x 35 tokens,
two ways that give the same metrics:

* **by positions** (models with ``features`` and ``head``): the body once a batch, then the
  output layer and the loss on chunks of at most ``EVAL_LOGITS_PER_CHUNK`` logits;
* **by rows** (models with ``apply`` alone): ``apply`` on chunks of whole rows of the same
  logit budget, so the body runs on small pieces too.

The two alternate for ``--rounds`` rounds; each is summarised by its median round.

    python benchmarks/lm_evaluation.py [--batches 20] [--rounds 5]

Last line: JSON {positions_s, rows_s, speedup (rows / positions), tokens, tokens_per_s_positions,
tokens_per_s_rows, same_loss}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from itertools import islice

from seqfunc import rng
from seqfunc.data.text_files import data_root
from seqfunc.runs.build import build
from seqfunc.runs.config import TrainConfig
from seqfunc.tasks.language_model import LanguageModelTask


class ApplyOnly:
    """The same model seen through ``apply`` alone: evaluated by rows."""

    def __init__(self, model):
        self.config, self.apply = model.config, model.apply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not (data_root() / "wikitext-2").exists():
        raise SystemExit(f"needs WikiText-2 in {data_root() / 'wikitext-2'}")

    from seqfunc.data.wikitext import WikiText2Dataset

    recipe = WikiText2Dataset.train_defaults
    dataset, model, _ = build(
        TrainConfig(
            dataset="wikitext2", model=recipe["model"], model_options=recipe["model_options"]
        )
    )
    params = model.init(rng.key(0))
    batches = list(islice(dataset.batches("val", recipe["eval_batch_size"]), args.batches))
    task = LanguageModelTask.for_dataset(dataset)
    contenders = {"by positions": model, "by rows": ApplyOnly(model)}
    seconds = {name: [] for name in contenders}
    records = {}
    for _ in range(args.rounds):
        for name, seen_as in contenders.items():
            start = time.perf_counter()
            records[name] = task.evaluate(seen_as, params, batches)
            seconds[name].append(time.perf_counter() - start)

    tokens = records["by positions"]["tokens"]
    median = {name: statistics.median(s) for name, s in seconds.items()}
    print(
        f"WikiText-2 default GPT, {len(batches)} validation batches ({tokens:,} tokens), "
        f"median of {args.rounds} interleaved rounds"
    )
    print(f"{'evaluation':<14} {'seconds':>8} {'tokens/s':>10} {'loss':>9}")
    for name in contenders:
        print(
            f"{name:<14} {median[name]:8.2f} {tokens / median[name]:10,.0f} {records[name]['loss']:9.5f}"
        )
    speedup = median["by rows"] / median["by positions"]
    print(f"by positions / by rows: {speedup:.2f}x faster")
    same = (
        abs(records["by positions"]["loss"] - records["by rows"]["loss"])
        <= 1e-5 * records["by rows"]["loss"]
    )
    print(
        json.dumps(
            {
                "positions_s": round(median["by positions"], 3),
                "rows_s": round(median["by rows"], 3),
                "speedup": round(speedup, 3),
                "tokens": tokens,
                "tokens_per_s_positions": round(tokens / median["by positions"]),
                "tokens_per_s_rows": round(tokens / median["by rows"]),
                "same_loss": same,
            }
        )
    )


if __name__ == "__main__":
    main()
