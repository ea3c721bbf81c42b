"""Shared machinery of the studies that train variants of the seq2seq Transformer on the
formula task: the common options, one short training run per variant, the printed table,
the JSON file and the bar-chart plot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqfunc.serialization import atomic_write, write_json


def add_common_arguments(parser: argparse.ArgumentParser, *, out: str, steps: int) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path(out), help=f"output folder (default {out})"
    )
    parser.add_argument(
        "--steps", type=int, default=steps, help=f"training steps per variant (default {steps})"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--complexity", type=int, default=3, help="digits per operand")
    parser.add_argument("--val-size", type=int, default=500, help="validation formulas")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: tiny models gain little from more, and "
        "lose much when other jobs share the cores)",
    )


def check_common(args) -> None:
    from seqfunc.errors import UsageError

    for name in ("steps", "batch_size", "complexity", "val_size", "d_model", "heads", "threads"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    import torch

    torch.set_num_threads(args.threads)


def train_variant(args, name: str, model_options: dict) -> dict:
    """Train one variant (its run folder ``args.out / name``) and return its figures:
    ``train_s`` (training steps only, evaluation excluded), the final validation loss,
    token accuracy and exact match, and the parameter count."""
    from seqfunc import rng
    from seqfunc.runs import TrainConfig, build, files, fit
    from seqfunc.tree import tree_count

    cfg = TrainConfig(
        dataset="formula",
        model="transformer",
        dataset_options={"complexity": args.complexity, "val_size": args.val_size},
        model_options={"d_model": args.d_model, "heads": args.heads, **model_options},
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        eval_every=args.steps,
        log_every=max(args.steps // 10, 1),
        examples=0,
        warmup_steps=min(100, args.steps // 10),
    )
    _, model, _ = build(cfg)
    run_dir = args.out / name
    val = fit(cfg, run_dir, progress=False, log=lambda line: None)
    records = [json.loads(line) for line in (run_dir / files.METRICS).read_text().splitlines()]
    last_train = [r for r in records if r["split"] == "train"][-1]
    return {
        "variant": name,
        "model_options": model_options,
        "params": tree_count(model.init(rng.key(0))),
        "train_s": last_train["elapsed_s"],
        "train_loss": last_train["loss"],
        "val_loss": val["loss"],
        "token_accuracy": val["token_accuracy"],
        "exact_match": val["exact_match"],
    }


COLUMNS = [
    ("variant", "{:<12}"),
    ("params", "{:>8,}"),
    ("train_s", "{:>8.1f}"),
    ("train_loss", "{:>10.4f}"),
    ("val_loss", "{:>9.4f}"),
    ("token_accuracy", "{:>9.3f}"),
    ("exact_match", "{:>7.3f}"),
]
HEADERS = ["variant", "params", "train s", "train loss", "val loss", "tok acc", "exact"]


def format_table(rows: list[dict]) -> str:
    widths = [len(fmt.format(rows[0][key])) if rows else 8 for key, fmt in COLUMNS]
    head = " ".join(
        h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(HEADERS, widths))
    )
    lines = [head]
    for row in rows:
        lines.append(" ".join(fmt.format(row[key]) for key, fmt in COLUMNS))
    return "\n".join(lines)


def report(args, title: str, rows: list[dict]) -> None:
    """Print the table, write ``results.json`` and ``results.png`` into ``args.out``."""
    print(title)
    print(format_table(rows))
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
    write_json(args.out / "results.json", {"study": title, "args": meta, "results": rows})
    plot = plot_results(title, rows, args.out / "results.png")
    print(
        f"wrote {args.out / 'results.json'}"
        + (f" and {plot}" if plot else " (no plot: pip install 'seqfunc[plot]')")
    )


def plot_results(title: str, rows: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = [r["variant"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key, label in zip(
        axes,
        ("train_s", "val_loss", "token_accuracy"),
        ("training time (s)", "validation loss", "validation token accuracy"),
    ):
        ax.bar(names, [r[key] for r in rows], color="tab:blue")
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path
