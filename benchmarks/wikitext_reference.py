"""Assignment 002 on WikiText-2: the PyTorch tutorial's ``nn.TransformerEncoder`` model against
seqfunc's ``transformer_lm``, same files, same recipe, one process; then seqfunc's default
``wikitext2`` recipe within the tutorial model's 3-epoch wall time.

    python benchmarks/wikitext_reference.py   # 3 seeds x 3 epochs each, then the default recipe
    python benchmarks/wikitext_reference.py --seeds 1 --epochs 2 --no-default

Both train on ``wiki.valid.tokens`` and are tested on ``wiki.test.tokens`` (the shared copy has
no training file; see ``seqfunc/data/wikitext.py``), batch 20, bptt 35, SGD 5.0, StepLR 0.95
stepped once per epoch, gradients clipped at 0.5, dropout 0.2, test batch 10. The epochs of the
two models alternate (module epoch 1, seqfunc epoch 1, module epoch 2, ...), so machine drift
falls on both; tokens/s is per epoch of training (evaluation excluded) and the ratio is the
median of the per-epoch ratios. Each model trains ``--seeds`` times (initialisation and dropout
differ; the data order is the tutorial's, fixed): the two curves agree within noise at an
epoch when their mean perplexities differ by at most twice the standard error of that
difference. seqfunc's step is compiled when ``--compile`` (the default) and
its compilation is done on a throw-away step before the clock starts. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_lm import TransformerModel  # noqa: E402

from seqfunc import rng  # noqa: E402
from seqfunc.data.wikitext import WikiText2Dataset  # noqa: E402
from seqfunc.models.transformer_lm import TransformerLM, TransformerLMConfig  # noqa: E402
from seqfunc.runs import TrainConfig, fit, make_optimizer  # noqa: E402
from seqfunc.tasks import task_for  # noqa: E402
from seqfunc.train import init_state, make_step  # noqa: E402

SEED_MODEL = dict(d_model=200, heads=2, d_ff=200, layers=2, dropout=0.2)
BATCH = 20


def reference_runner(dataset, seed: int, eval_batch: int):
    """The tutorial's loop: ``train_epoch() -> tokens`` and ``test() -> perplexity``."""
    torch.manual_seed(seed)
    c = SEED_MODEL
    model = TransformerModel(
        len(dataset.vocab), c["d_model"], c["heads"], c["d_ff"], c["layers"], c["dropout"]
    )
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=5.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.95)
    bptt = dataset.config.bptt
    mask = model.generate_square_subsequent_mask(bptt)

    def train_epoch() -> int:
        model.train()
        tokens = 0
        for batch in dataset.batches("train", BATCH):
            data, targets = batch["inputs"].t(), batch["targets"].t().reshape(-1)
            output = model(data, mask)
            loss = criterion(output.view(-1, output.shape[-1]), targets)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
            tokens += targets.numel()
        scheduler.step()
        return tokens

    @torch.no_grad()
    def test() -> float:
        model.eval()
        total, count = 0.0, 0
        for batch in dataset.batches("test", eval_batch):
            data, targets = batch["inputs"].t(), batch["targets"].t().reshape(-1)
            t = data.shape[0]
            output = model(data, model.generate_square_subsequent_mask(t))
            total += (
                t * data.shape[1] * float(criterion(output.view(-1, output.shape[-1]), targets))
            )
            count += targets.numel()
        return math.exp(total / count)

    return train_epoch, test


def seqfunc_runner(dataset, seed: int, compile: bool, eval_batch: int):
    """seqfunc's ``seqfunc train wikitext2 --recipe seed`` step, driven epoch by epoch."""
    recipe = WikiText2Dataset.recipes["seed"]
    cfg = TrainConfig(**{**recipe, "dataset": "wikitext2", "seed": seed, "compile": compile})
    model = TransformerLM(TransformerLMConfig(vocab_size=len(dataset.vocab), **cfg.model_options))
    task = task_for(dataset)
    steps_per_epoch = dataset.num_examples("train") // BATCH
    optimizer = make_optimizer(cfg, (cfg.epochs or 1) * steps_per_epoch)
    k_init, k_train = rng.split(rng.key(seed))
    state = init_state(model.init(k_init), optimizer)
    step_fn = make_step(task.loss_fn(model), optimizer, compile=compile)
    first = next(dataset.batches("train", BATCH))
    step_fn(state, first, k_train)  # compiles (if compiled); the result is dropped
    step = 0

    def train_epoch() -> int:
        nonlocal state, step
        tokens = 0
        for batch in dataset.batches("train", BATCH):
            state, metrics = step_fn(state, batch, rng.fold_in(k_train, step))
            step += 1
            tokens += batch["targets"].numel()
        float(metrics["loss"])
        return tokens

    def test() -> float:
        return task.evaluate(model, state.params, dataset.batches("test", eval_batch))["perplexity"]

    return train_epoch, test


def default_recipe(budget_s: float) -> tuple[float, float]:
    """``seqfunc train wikitext2`` (the default recipe): its test perplexity and wall seconds."""
    cfg = TrainConfig(**{**WikiText2Dataset.train_defaults, "dataset": "wikitext2"})
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        record = fit(cfg, out, progress=False, log=lambda line: None)
        wall = time.perf_counter() - start
    print(
        f"default recipe: test perplexity {record['perplexity']:.1f} in {wall:.0f} s "
        f"(the module's 3 epochs: {budget_s:.0f} s)"
    )
    return record["perplexity"], wall


def train_pair(dataset, seed: int, args) -> dict:
    """One seed of both models, their epochs alternating: perplexity, training seconds and
    training + testing seconds per epoch, per model; training tokens per epoch."""
    runners = {
        "module": reference_runner(dataset, seed, args.eval_batch),
        "seqfunc": seqfunc_runner(dataset, seed, args.compile, args.eval_batch),
    }
    out = {name: {"ppl": [], "train_s": [], "wall_s": []} for name in runners}
    for epoch in range(1, args.epochs + 1):
        for name, (train_epoch, test) in runners.items():
            start = time.perf_counter()
            out["tokens"] = train_epoch()
            out[name]["train_s"].append(time.perf_counter() - start)
            out[name]["ppl"].append(test())
            out[name]["wall_s"].append(time.perf_counter() - start)
        m, q = out["module"], out["seqfunc"]
        print(
            f"{seed:>4} {epoch:>5} {m['ppl'][-1]:>11.1f} {q['ppl'][-1]:>12.1f} "
            f"{out['tokens'] / m['train_s'][-1]:>13.0f} {out['tokens'] / q['train_s'][-1]:>14.0f} "
            f"{m['train_s'][-1] / q['train_s'][-1]:>6.2f}"
        )
    return out


def curve_agreement(ref: list[list[float]], ours: list[list[float]]) -> list[dict]:
    """Per epoch, over seeds: each model's mean and standard deviation, the gap of the means
    (% of the module's), and whether it is within noise: at most twice the standard error of
    the difference of the means (needs two seeds or more)."""
    rows = []
    for m, q in zip(zip(*ref), zip(*ours)):
        n = len(m)
        sd_m = statistics.stdev(m) if n > 1 else float("nan")
        sd_q = statistics.stdev(q) if n > 1 else float("nan")
        mean_m, mean_q = statistics.fmean(m), statistics.fmean(q)
        two_se = 2 * math.sqrt((sd_m**2 + sd_q**2) / n) if n > 1 else float("nan")
        rows.append(
            {
                "ref_mean": mean_m,
                "ref_sd": sd_m,
                "mean": mean_q,
                "sd": sd_q,
                "gap_pct": 100 * (mean_q / mean_m - 1),
                "two_se": two_se,
                "within_noise": bool(n > 1 and abs(mean_q - mean_m) <= two_se),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="seeds per model (seed, seed + 1, ...): their spread is the noise "
        "the two curves are compared against",
    )
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument(
        "--eval-batch",
        type=int,
        default=10,
        help="test batch size of both models (the tutorial: 10; larger is "
        "faster, the perplexity nearly the same)",
    )
    parser.add_argument(
        "--no-default", dest="default", action="store_false", help="skip seqfunc's default recipe"
    )
    args = parser.parse_args()

    dataset = WikiText2Dataset()
    print(
        f"{'seed':>4} {'epoch':>5} {'module ppl':>11} {'seqfunc ppl':>12} {'module tok/s':>13} "
        f"{'seqfunc tok/s':>14} {'ratio':>6}"
    )
    runs = [train_pair(dataset, args.seed + i, args) for i in range(args.seeds)]
    tokens = runs[0]["tokens"]
    ref = [run["module"]["ppl"] for run in runs]
    ours = [run["seqfunc"]["ppl"] for run in runs]
    agreement = curve_agreement(ref, ours)
    print(f"\nover {args.seeds} seed(s): test perplexity mean +- sd per epoch")
    print(f"{'epoch':>5} {'module':>15} {'seqfunc':>15} {'gap':>8} {'2 x s.e.':>9}  within noise")
    for epoch, row in enumerate(agreement, 1):
        print(
            f"{epoch:>5} {row['ref_mean']:>8.1f} +- {row['ref_sd']:<4.1f} {row['mean']:>8.1f} +- "
            f"{row['sd']:<4.1f} {row['gap_pct']:>+7.1f}% {row['two_se']:>9.1f}  "
            f"{'yes' if row['within_noise'] else 'no'}"
        )
    ratio = statistics.median(
        m / s for run in runs for m, s in zip(run["module"]["train_s"], run["seqfunc"]["train_s"])
    )
    ref_walls = [sum(run["module"]["wall_s"][:3]) * (3 / min(3, args.epochs)) for run in runs]
    ref_wall = statistics.median(ref_walls)
    print(
        f"tokens/s ratio (median of every epoch of every seed) {ratio:.2f}x; the module's "
        f"3 epochs take {ref_wall:.0f} s (median of seeds)"
    )
    module_s = sum(sum(run["module"]["train_s"]) for run in runs)
    seqfunc_s = sum(sum(run["seqfunc"]["train_s"]) for run in runs)
    epochs_run = args.epochs * args.seeds
    result = {
        "ref_ppl": [round(row["ref_mean"], 2) for row in agreement],
        "seed_recipe_ppl": [round(row["mean"], 2) for row in agreement],
        "ref_ppl_sd": [round(row["ref_sd"], 2) for row in agreement],
        "seed_recipe_ppl_sd": [round(row["sd"], 2) for row in agreement],
        "gap_pct": [round(row["gap_pct"], 2) for row in agreement],
        "within_noise": [row["within_noise"] for row in agreement],
        "ref_ppl_by_seed": [[round(p, 2) for p in r] for r in ref],
        "seed_recipe_ppl_by_seed": [[round(p, 2) for p in r] for r in ours],
        "seeds": args.seeds,
        "ref_wall_3_epochs_s": round(ref_wall, 1),
        "ref_tokens_per_s": round(tokens * epochs_run / module_s),
        "seqfunc_tokens_per_s": round(tokens * epochs_run / seqfunc_s),
        "tokens_per_s_ratio": round(ratio, 3),
        "compiled": args.compile,
        "eval_batch": args.eval_batch,
        "threads": torch.get_num_threads(),
    }
    if args.default:
        default_ppl, default_wall = default_recipe(ref_wall)
        result.update(default_ppl=round(default_ppl, 2), default_wall_s=round(default_wall, 1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
