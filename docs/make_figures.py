"""Regenerate the documentation's figures (small PNGs in ``docs/``) from real runs.

    python docs/make_figures.py [--formula-run runs/run_all/formula] \
        [--add2digits-run runs/add2digits]
                                 [--sweep-run runs/sweep_imdb-synth]

* ``formula_curves.png``: training loss and validation exact match of a formula run, read from
  its ``metrics.jsonl`` (the default is the run ``benchmarks/run_all.py`` leaves behind; any
  ``seqfunc train --out DIR`` folder works).
* ``attention_map.png``: ``seqfunc attention RUN "123+123"`` on the same run.
* ``attention_kernels.png``: the causal attention weights of every kernel on the same random
  queries and keys (``kernel.weights``): no run needed, drawn from the code as it is.
* ``add2digits.png``: the RNN-vs-LSTM curves, re-drawn from the ``add2digits.json`` of a
  ``seqfunc experiment add2digits --out DIR`` run.
* ``sweep_imdb-synth.png``: the learning rate x weight decay sweep of the sweeps page, re-drawn
  from the folder of ``seqfunc sweep imdb-synth --optimizer adamw --grid
  lr=3e-4,1e-3,3e-3,1e-2 --grid weight_decay=0,0.1 --seeds 2 -d train_size=8000 -d
  val_size=2000 --epochs 1 --out runs/sweep_imdb-synth``.

A figure whose run is missing is left as it is, and the script says so; it never draws from
made-up numbers. Needs matplotlib (``pip install ".[plot]"``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent


def read_metrics(run: Path) -> list[dict]:
    return [
        json.loads(line)
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]


def formula_curves(run: Path, path: Path) -> None:
    """Two panels: training loss (log scale) and validation exact match / token accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run)
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(8, 2.8))
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue")
    ax_loss.set(yscale="log", xlabel="step", ylabel="training loss")
    ax_acc.plot(
        [r["step"] for r in val],
        [100 * r["exact_match"] for r in val],
        "o-",
        markersize=3,
        label="exact match",
    )
    ax_acc.plot(
        [r["step"] for r in val],
        [100 * r["token_accuracy"] for r in val],
        "s--",
        markersize=3,
        label="token accuracy",
    )
    ax_acc.axhline(99, color="gray", linewidth=0.8, linestyle=":")
    ax_acc.set(xlabel="step", ylabel="% of 5,000 held-out formulas", ylim=(0, 101))
    ax_acc.legend(fontsize=8, loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    last = val[-1]
    fig.suptitle(
        f"seqfunc train (formula): {100 * last['exact_match']:.2f} % exact match "
        f"after {last['step']:,} steps",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def attention_kernels(path: Path) -> None:
    """One panel per kernel: its causal ``(t, t)`` weights for one head, same inputs for all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqfunc import rng
    from seqfunc.nn.attention_kernels import KERNELS, attention_kernel

    t, d = 24, 16
    q, k = (rng.normal(key, (1, 1, t, d)) for key in rng.split(rng.key(0)))
    specs = {
        name: {"kind": name, "window": 6}
        if name == "window"
        else {"kind": name, "chunk": 8}
        if name in ("linear", "chunked")
        else name
        for name in KERNELS
    }
    fig, axes = plt.subplots(1, len(specs), figsize=(1.6 * len(specs), 2.0))
    for ax, (name, spec) in zip(axes, specs.items()):
        kernel = attention_kernel(spec)
        params = kernel.init(rng.key(1), 1, d)
        weights = kernel.weights(params, q, k, causal=True)[0, 0]
        ax.imshow(weights.detach().numpy(), cmap="viridis", vmin=0.0)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"causal attention weights of each kernel, {t} positions (rows: queries)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def attention_map(run: Path, path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "seqfunc", "attention", str(run), "123+123", "--out", str(path)],
        check=True,
        cwd=ROOT,
    )


def add2digits(run: Path, path: Path) -> None:
    from seqfunc.experiments.add2digits import plot

    summary = json.loads((run / "add2digits.json").read_text())
    curve_keys = ("length", "model")
    rows = [
        {
            "length": c["length"],
            "model": c["model"],
            "curves": {k: v for k, v in c.items() if k not in curve_keys},
        }
        for c in summary["curves"]
    ]
    args = summary["args"]
    title = (
        f"Add2Digits: {', '.join(k.upper() for k in args['kinds'])}, hidden "
        f"{args['hidden_size']}, {args['layers']} layers, {args['steps']} steps of "
        f"{args['batch_size']}"
    )
    plot(rows, list(args["lengths"]), path, title)


def sweep_figure(run: Path, path: Path) -> None:
    """``sweep.png`` of a ``seqfunc sweep --out DIR`` folder, re-drawn from its files (the
    grid and seeds in sweep.json, the summaries in sweep.jsonl, each member's validation
    curve in members/*/metrics.jsonl)."""
    import itertools

    from seqfunc.runs.sweep_folder import plot_sweep

    spec = json.loads((run / "sweep.json").read_text())
    lines = [json.loads(line) for line in (run / "sweep.jsonl").read_text().splitlines()]
    summaries = [line for line in lines if "point" in line]
    points = [
        dict(zip(spec["grid"], values)) for values in itertools.product(*spec["grid"].values())
    ]
    curves = [
        [r for r in read_metrics(folder) if r.get("split") == "val"]
        for folder in sorted((run / "members").iterdir())
    ]
    plot_sweep(points, spec["seeds"], curves, summaries, summaries[0]["metric"], path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formula-run", type=Path, default=ROOT / "runs" / "run_all" / "formula")
    parser.add_argument("--add2digits-run", type=Path, default=ROOT / "runs" / "add2digits")
    parser.add_argument("--sweep-run", type=Path, default=ROOT / "runs" / "sweep_imdb-synth")
    args = parser.parse_args()
    figures = [
        ("formula_curves.png", formula_curves, args.formula_run, "metrics.jsonl"),
        ("attention_map.png", attention_map, args.formula_run, "params.safetensors"),
        ("add2digits.png", add2digits, args.add2digits_run, "add2digits.json"),
        ("sweep_imdb-synth.png", sweep_figure, args.sweep_run, "sweep.jsonl"),
    ]
    attention_kernels(DOCS / "attention_kernels.png")
    print("wrote  docs/attention_kernels.png")
    for name, draw, run, needs in figures:
        if not (run / needs).exists():
            print(f"kept   docs/{name}: no {run / needs}")
            continue
        draw(run, DOCS / name)
        print(f"wrote  docs/{name} from {run}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
