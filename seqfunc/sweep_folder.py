"""A sweep on disk: ``run_sweep`` trains a grid x seeds and leaves a sweep folder::

    sweep.json          the base config, the grid and the seeds
    members/NNN-.../    one run folder per member (config.json, metrics.jsonl, params...),
                        loadable like any run (``seqfunc predict``, ``load_run``)
    sweep.jsonl         one line per member (its values, seed, final validation metrics),
                        then one per grid point (mean and std over seeds)
    sweep.png           validation curves per grid point; final metric against each value
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Callable, Sequence

from seqfunc.checkpoint import atomic_write, write_json
from seqfunc.config import to_dict
from seqfunc.ensemble import mean_std
from seqfunc.errors import CheckpointError
from seqfunc.runs.folder import MetricsLog, RunFolder
from seqfunc.runs.plots import ACCURACY_METRICS, plot_metrics
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.state import Progress
from seqfunc.sweep import grid_members, group_members, train_members


def primary_metric(record: dict) -> tuple[str, bool]:
    """``(name, higher is better)``: the task's accuracy-like metric, else the loss."""
    for name in ACCURACY_METRICS:
        if name in record:
            return name, True
    return "loss", False


def member_name(i: int, values: dict, seed: int) -> str:
    parts = [f"{k}={v}" for k, v in values.items()] + [f"seed={seed}"]
    return f"{i:03d}-" + "-".join(parts).replace("/", "_")


def run_sweep(
    base: TrainConfig, grid: dict[str, Sequence], seeds: Sequence[int], out_dir, *,
    max_members: int | None = None, log: Callable[[str], None] = print,
) -> dict:
    """Train every member, write the sweep folder, print the table; returns the best grid
    point's summary (``{"values", "metric", "mean", "std", "seeds"}``)."""
    out = Path(out_dir)
    if (out / "sweep.json").exists():
        raise CheckpointError(f"{out} already holds a sweep; choose another --out")
    members = grid_members(base, grid, seeds)
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", {"base": to_dict(base), "grid": {k: list(v) for k, v in grid.items()},
                                    "seeds": list(seeds)})
    jobs = group_members(members, max_members)
    finals: list[dict] = [{} for _ in members]
    curves: list[list[dict]] = [[] for _ in members]
    for number, job in enumerate(jobs, 1):
        log(f"job {number}/{len(jobs)}: {len(job)} members in one vmapped step")
        result = train_members([members[i] for i in job], log=log)
        log(f"  trained in {result.train_s:.1f}s")
        for row, i in enumerate(job):
            point = points[i // len(seeds)]
            folder = out / "members" / member_name(i, point, members[i].seed)
            _write_member(folder, result, row)
            curves[i] = [r for r in result.records[row] if r["split"] == "val"]
            finals[i] = curves[i][-1]
    summaries = _summaries(points, seeds, finals)
    lines = [{"member": i, "values": points[i // len(seeds)], "seed": cfg.seed,
              **{k: v for k, v in finals[i].items() if k != "split"}} for i, cfg in enumerate(members)]
    text = "".join(json.dumps(line) + "\n" for line in lines + summaries)
    atomic_write(out / "sweep.jsonl", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    metric, higher = primary_metric(finals[0])
    best = (max if higher else min)(summaries, key=lambda s: s["mean"])
    for line in table(summaries, metric, best):
        log(line)
    if plot_sweep(points, seeds, curves, summaries, metric, out / "sweep.png") is None:
        log("matplotlib is not installed: no sweep.png (pip install 'seqfunc[plot]')")
    return best


def _write_member(folder: Path, result, row: int) -> None:
    """One member as a run folder, written by the run-folder functions every run uses."""
    cfg = result.members[row]
    run = RunFolder(folder)
    run.write_config(cfg, result.dataset, result.model)
    metrics = MetricsLog(folder / "metrics.jsonl")
    for record in result.records[row]:
        metrics.write(record)
    progress = Progress(step=result.steps, metrics_lines=metrics.lines)
    run.write_final(result.member_params()[row], result.member_opt_state(row), progress.to_json())
    plot_metrics(metrics.records, folder / "curves.png")


def _summaries(points: list[dict], seeds: Sequence[int], finals: list[dict]) -> list[dict]:
    metric, _ = primary_metric(finals[0])
    summaries = []
    for p, values in enumerate(points):
        scores = [finals[p * len(seeds) + s][metric] for s in range(len(seeds))]
        mean, std = mean_std(scores)
        summaries.append({"point": p, "values": values, "metric": metric, "mean": mean,
                          "std": std, "seeds": list(seeds), "per_seed": scores})
    return summaries


def table(summaries: list[dict], metric: str, best: dict) -> list[str]:
    """The printed table: one row per grid point, mean +- std over seeds; the best marked."""
    names = list(summaries[0]["values"])
    widths = [max(len(n), *(len(f"{s['values'][n]}") for s in summaries)) for n in names]
    header = "  ".join(n.rjust(w) for n, w in zip(names, widths)) + f"  val {metric} (mean +- std)"
    lines = [header]
    for s in summaries:
        cells = "  ".join(f"{s['values'][n]}".rjust(w) for n, w in zip(names, widths))
        mark = "  <- best" if s is best else ""
        lines.append(f"{cells}  {s['mean']:.4f} +- {s['std']:.4f}{mark}")
    values = ", ".join(f"{k}={v}" for k, v in best["values"].items())
    runner_up = sorted((s for s in summaries if s is not best), key=lambda s: s["mean"],
                       reverse=metric != "loss")
    margin = f", ahead of the next point by {abs(best['mean'] - runner_up[0]['mean']):.4f}" if runner_up else ""
    lines.append(f"best: {values} (val {metric} {best['mean']:.4f} +- {best['std']:.4f} over "
                 f"{len(best['seeds'])} seeds{margin})")
    return lines


def plot_sweep(points, seeds, curves, summaries, metric: str, path: Path) -> Path | None:
    """Left: the validation metric against step, mean over seeds, one line per grid point.
    Then one panel per swept name: the final metric (mean +- std) against its values."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = list(points[0])
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(5 * (1 + len(names)), 4), squeeze=False)
    ax = axes[0, 0]
    for p, values in enumerate(points):
        runs = curves[p * len(seeds):(p + 1) * len(seeds)]
        steps = [r["step"] for r in runs[0]]
        mean = [sum(run[j][metric] for run in runs) / len(runs) for j in range(len(steps))]
        ax.plot(steps, mean, "o-", ms=3, label=", ".join(f"{k}={v}" for k, v in values.items()))
    ax.set(xlabel="step", ylabel=f"val {metric}", title=f"val {metric} (mean over seeds)")
    ax.legend(fontsize=7)
    for ax, name in zip(axes[0, 1:], names):
        others = [n for n in names if n != name]
        groups: dict = {}
        for s in summaries:
            groups.setdefault(tuple(s["values"][n] for n in others), []).append(s)
        for key, rows in groups.items():
            label = ", ".join(f"{n}={v}" for n, v in zip(others, key)) or None
            ax.errorbar([r["values"][name] for r in rows], [r["mean"] for r in rows],
                        yerr=[r["std"] for r in rows], fmt="o-", capsize=3, label=label)
        xs = [s["values"][name] for s in summaries]
        if all(isinstance(x, (int, float)) and x > 0 for x in xs) and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel=f"final val {metric}", title=f"final val {metric} vs {name}")
        if len(groups) > 1:
            ax.legend(fontsize=7)
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
