"""The run's curves: loss and accuracy against step, train and validation."""

from __future__ import annotations

import math
from pathlib import Path

from seqfunc.serialization import atomic_write

#: Metrics drawn on the accuracy panel when a task reports them.
ACCURACY_METRICS = ("token_accuracy", "exact_match", "accuracy")


def _values(rows: list[dict], name: str) -> list[float]:
    """One metric of each record; a NaN written to metrics.jsonl as null (a resumed run's
    records are read from it) is a gap in the curve."""
    return [math.nan if r.get(name) is None else r[name] for r in rows]


def plot_metrics(records: list[dict], path: Path) -> Path | None:
    """Loss and accuracy against step, train and validation; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    accuracy_names = [name for name in ACCURACY_METRICS if any(name in r for r in records)]
    panels = 2 if accuracy_names else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    ax_loss = axes[0, 0]
    for split, style in (("train", "-"), ("val", "o-")):
        rows = [r for r in records if r["split"] == split]
        if not rows:
            continue
        steps = [r["step"] for r in rows]
        ax_loss.plot(steps, _values(rows, "loss"), style, label=f"{split} loss")
        for name in accuracy_names:
            if name in rows[0]:
                axes[0, 1].plot(steps, _values(rows, name), style, label=f"{split} {name}")
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
    if accuracy_names:
        axes[0, 1].set(xlabel="step", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
