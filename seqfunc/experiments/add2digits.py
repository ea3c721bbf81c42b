"""RNN vs LSTM on Add2Digits at three sequence lengths (assignment 001, question 1.2).

For each length the two classifiers (``rnn-classifier`` with ``kind`` rnn and lstm: one-hot
inputs, hidden 128, 2 layers, the same optimiser, schedule, steps, data and seed) train with
:func:`seqfunc.runs.fit`; each run leaves its folder ``OUT/len{L}-{kind}``. Then:

* ``OUT/add2digits.png``: one column per length; top row training loss against steps, bottom
  row training (batch mean over each log window) and validation accuracy against steps;
* a printed table: length, model, final and best validation accuracy, accuracy on the whole
  training split at the end, seconds (the fit call: training and its evaluations);
* ``OUT/add2digits.json`` and, as the last printed line, the same figures as one JSON object.

Chance: a model that ignores the marker and only reads the last digit is right 10% of the
time (the other addend is uniform over 0-9), so ~0.10 means "did not learn to look back".

    seqfunc experiment add2digits                      # lengths 5 10 30, 1200 steps each
    seqfunc experiment add2digits --lengths 30 --steps 600 --kinds rnn lstm gru
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from seqfunc.serialization import atomic_write, write_json

DATA_DEFAULTS = {"train_size": 20_000, "val_size": 2_000}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=[5, 10, 30],
        help="sequence lengths, each >= 3 (default 5 10 30)",
    )
    p.add_argument(
        "--kinds",
        nargs="+",
        default=["rnn", "lstm"],
        choices=["rnn", "lstm", "gru"],
        help="recurrent cells compared (default rnn lstm)",
    )
    p.add_argument("--steps", type=int, default=1200, help="training steps per run (default 1200)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam peak learning rate (default 2e-3)")
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--train-size", type=int, default=DATA_DEFAULTS["train_size"])
    p.add_argument("--val-size", type=int, default=DATA_DEFAULTS["val_size"])
    p.add_argument(
        "--eval-every", type=int, default=50, help="steps between validations (default 50)"
    )
    p.add_argument(
        "--log-every", type=int, default=25, help="steps per logged training point (default 25)"
    )
    p.add_argument("--seed", type=int, default=0, help="data and parameter seed")
    p.add_argument("--out", type=Path, default=Path("runs/add2digits"), help="output folder")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's default)"
    )


def _check(args) -> None:
    from seqfunc.errors import UsageError

    if any(length < 3 for length in args.lengths):
        raise UsageError(f"--lengths must all be >= 3, got {args.lengths}")
    for name in (
        "steps",
        "batch_size",
        "lr",
        "hidden_size",
        "layers",
        "train_size",
        "val_size",
        "eval_every",
        "log_every",
    ):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.warmup_steps < 0 or args.threads < 0:
        raise UsageError("--warmup-steps and --threads must be >= 0")
    if args.batch_size > args.train_size:
        raise UsageError(
            f"--batch-size={args.batch_size} is larger than --train-size={args.train_size}"
        )


def run_config(args, length: int, kind: str):
    from seqfunc.runs import TrainConfig

    return TrainConfig(
        dataset="add2digits",
        model="rnn-classifier",
        dataset_options={
            "length": length,
            "train_size": args.train_size,
            "val_size": args.val_size,
            "seed": args.seed,
        },
        model_options={
            "kind": kind,
            "hidden_size": args.hidden_size,
            "layers": args.layers,
            "inputs": "one_hot",
        },
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule="warmup_cosine",
        warmup_steps=min(args.warmup_steps, args.steps),
        seed=args.seed,
        eval_every=min(args.eval_every, args.steps),
        log_every=min(args.log_every, args.steps),
        eval_batch_size=1000,
        examples=0,
    )


def train_one(args, length: int, kind: str) -> dict:
    """Fit one cell; its figures and curves."""
    from seqfunc import rng
    from seqfunc.runs import build, files, fit
    from seqfunc.serialization import load_params
    from seqfunc.tree import tree_count

    cfg = run_config(args, length, kind)
    run_dir = args.out / f"len{length}-{kind}"
    t0 = time.perf_counter()
    fit(cfg, run_dir, progress=False, log=lambda line: None)
    seconds = time.perf_counter() - t0
    records = [json.loads(line) for line in (run_dir / files.METRICS).read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "val"]
    dataset, model, task = build(cfg)
    params = load_params(run_dir / files.PARAMS, model.init(rng.key(0)))
    on_train = task.evaluate(model, params, dataset.batches("train", 1000))
    return {
        "length": length,
        "model": kind,
        "params": tree_count(params),
        "final_val_accuracy": val[-1]["accuracy"],
        "best_val_accuracy": max(r["accuracy"] for r in val),
        "train_accuracy": on_train["accuracy"],
        "final_train_loss": train[-1]["loss"],
        "seconds": round(seconds, 1),
        "run_dir": str(run_dir),
        "curves": {
            "train_step": [r["step"] for r in train],
            "train_loss": [r["loss"] for r in train],
            "train_accuracy": [r["accuracy"] for r in train],
            "val_step": [r["step"] for r in val],
            "val_accuracy": [r["accuracy"] for r in val],
        },
    }


def format_table(rows: list[dict]) -> str:
    lines = [
        "| length | model | final val acc | best val acc | train acc | seconds |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['length']} | {r['model'].upper()} | {r['final_val_accuracy']:.3f} | "
            f"{r['best_val_accuracy']:.3f} | {r['train_accuracy']:.3f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], lengths: list[int], path: Path, title: str) -> Path | None:
    """Columns = lengths; top: training loss, bottom: train and validation accuracy."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    colors = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
    fig, axes = plt.subplots(
        2, len(lengths), figsize=(4.2 * len(lengths), 6.4), squeeze=False, sharex=True
    )
    for col, length in enumerate(lengths):
        ax_loss, ax_acc = axes[0, col], axes[1, col]
        for r in (r for r in rows if r["length"] == length):
            c, name, color = r["curves"], r["model"].upper(), colors.get(r["model"])
            ax_loss.plot(c["train_step"], c["train_loss"], color=color, label=f"{name} train loss")
            ax_acc.plot(
                c["train_step"], c["train_accuracy"], color=color, alpha=0.6, label=f"{name} train"
            )
            ax_acc.plot(
                c["val_step"],
                c["val_accuracy"],
                "o--",
                color=color,
                markersize=3,
                label=f"{name} val",
            )
        ax_loss.set(title=f"length {length}", ylabel="training loss" if col == 0 else None)
        ax_acc.set(xlabel="step", ylabel="accuracy" if col == 0 else None, ylim=(0, 1.02))
        ax_acc.axhline(0.1, color="gray", linewidth=0.8, linestyle=":")
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
        ax_loss.legend(fontsize=8)
        ax_acc.legend(fontsize=8, loc="lower right" if col else "best")
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:
    import torch

    _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = []
    for length in args.lengths:
        for kind in args.kinds:
            rows.append(train_one(args, length, kind))
            r = rows[-1]
            print(
                f"length {length:>3} {kind.upper():<4} val {r['final_val_accuracy']:.3f} "
                f"(best {r['best_val_accuracy']:.3f}), train {r['train_accuracy']:.3f}, "
                f"{r['seconds']:.0f}s",
                flush=True,
            )
    title = (
        f"Add2Digits: {', '.join(k.upper() for k in args.kinds)}, hidden {args.hidden_size}, "
        f"{args.layers} layers, {args.steps} steps of {args.batch_size}"
    )
    figure = plot(rows, list(args.lengths), args.out / "add2digits.png", title)
    summary = {
        "experiment": "add2digits",
        "figure": str(figure) if figure else None,
        "total_seconds": round(time.perf_counter() - started, 1),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": [{k: v for k, v in r.items() if k != "curves"} for r in rows],
    }
    write_json(
        args.out / "add2digits.json",
        {
            **summary,
            "curves": [{"length": r["length"], "model": r["model"], **r["curves"]} for r in rows],
        },
    )
    print()
    print(title)
    print(format_table(rows))
    print(
        f"\nwrote {args.out / 'add2digits.json'}"
        + (f" and {figure}" if figure else " (no figure: pip install 'seqfunc[plot]')")
        + f" in {summary['total_seconds']:.0f}s"
    )
    print(json.dumps(summary))
    return 0
