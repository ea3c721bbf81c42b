"""Seed 002 on WikiText-2: the PyTorch tutorial's ``nn.TransformerEncoder`` model against
seqfunc's ``transformer_lm``, same files, same recipe, one process; then seqfunc's default
``wikitext2`` recipe within the tutorial model's 3-epoch wall time.

    python benchmarks/wikitext_reference.py            # 3 epochs each, then the default recipe
    python benchmarks/wikitext_reference.py --epochs 2 --no-default

Both train on ``wiki.valid.tokens`` and are tested on ``wiki.test.tokens`` (the shared copy has
no training file; see ``seqfunc/data/wikitext.py``), batch 20, bptt 35, SGD 5.0, StepLR 0.95
stepped once per epoch, gradients clipped at 0.5, dropout 0.2, test batch 10. The epochs of the
two models alternate (module epoch 1, seqfunc epoch 1, module epoch 2, ...), so machine drift
falls on both; tokens/s is per epoch of training (evaluation excluded) and the ratio is the
median of the per-epoch ratios. seqfunc's step is compiled when ``--compile`` (the default) and
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
from seqfunc.fit import TrainConfig, fit, make_optimizer  # noqa: E402
from seqfunc.models.transformer_lm import TransformerLM, TransformerLMConfig  # noqa: E402
from seqfunc.tasks import task_for  # noqa: E402
from seqfunc.train import init_state, make_step  # noqa: E402

SEED_MODEL = dict(d_model=200, heads=2, d_ff=200, layers=2, dropout=0.2)
BATCH = 20


def reference_runner(dataset, seed: int, eval_batch: int):
    """The tutorial's loop: ``train_epoch() -> tokens`` and ``test() -> perplexity``."""
    torch.manual_seed(seed)
    c = SEED_MODEL
    model = TransformerModel(len(dataset.vocab), c["d_model"], c["heads"], c["d_ff"], c["layers"], c["dropout"])
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
            total += t * data.shape[1] * float(criterion(output.view(-1, output.shape[-1]), targets))
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
    print(f"default recipe: test perplexity {record['perplexity']:.1f} in {wall:.0f} s "
          f"(the module's 3 epochs: {budget_s:.0f} s)")
    return record["perplexity"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--eval-batch", type=int, default=10,
                        help="test batch size of both models (the tutorial: 10; larger is "
                        "faster, the perplexity nearly the same)")
    parser.add_argument("--no-default", dest="default", action="store_false",
                        help="skip seqfunc's default recipe")
    args = parser.parse_args()

    dataset = WikiText2Dataset()
    runners = {
        "module": reference_runner(dataset, args.seed, args.eval_batch),
        "seqfunc": seqfunc_runner(dataset, args.seed, args.compile, args.eval_batch),
    }
    ppl = {name: [] for name in runners}
    seconds = {name: [] for name in runners}  # training only
    walls = {name: [] for name in runners}  # training and testing
    tokens = 0
    print(f"{'epoch':>5} {'module ppl':>11} {'seqfunc ppl':>12} {'module tok/s':>13} "
          f"{'seqfunc tok/s':>14} {'ratio':>6}")
    for epoch in range(1, args.epochs + 1):
        for name, (train_epoch, test) in runners.items():
            start = time.perf_counter()
            tokens = train_epoch()
            seconds[name].append(time.perf_counter() - start)
            ppl[name].append(test())
            walls[name].append(time.perf_counter() - start)
        rates = {name: tokens / seconds[name][-1] for name in runners}
        print(f"{epoch:>5} {ppl['module'][-1]:>11.1f} {ppl['seqfunc'][-1]:>12.1f} "
              f"{rates['module']:>13.0f} {rates['seqfunc']:>14.0f} "
              f"{rates['seqfunc'] / rates['module']:>6.2f}")
    ratio = statistics.median(m / s for m, s in zip(seconds["module"], seconds["seqfunc"]))
    gaps = [abs(s / m - 1) for m, s in zip(ppl["module"], ppl["seqfunc"])]
    print(f"perplexity gap per epoch: {', '.join(f'{100 * g:.1f} %' for g in gaps)}; "
          f"tokens/s ratio (median of epochs) {ratio:.2f}x")
    ref_wall = sum(walls["module"][:3]) * (3 / min(3, args.epochs))
    result = {
        "ref_ppl": [round(p, 2) for p in ppl["module"]],
        "seed_recipe_ppl": [round(p, 2) for p in ppl["seqfunc"]],
        "ref_wall_3_epochs_s": round(ref_wall, 1),
        "ref_tokens_per_s": round(tokens * len(seconds["module"]) / sum(seconds["module"])),
        "seqfunc_tokens_per_s": round(tokens * len(seconds["seqfunc"]) / sum(seconds["seqfunc"])),
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
