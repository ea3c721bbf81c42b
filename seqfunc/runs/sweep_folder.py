"""A sweep on disk: ``run_sweep`` trains a grid x seeds and leaves a sweep folder::

.lock               the lock of the process writing the sweep (runs/lock.py)
sweep.json          the base config, the grid, the seeds and --max-members
jobs/job-NNN/       checkpoints of a vmapped job while it trains (removed when it is done)
members/NNN-.../    one run folder per member (config.json, metrics.jsonl as it trains;
                    params... at the end), loadable like any run (``seqfunc predict``,
                    ``load_run``)
sweep.jsonl         one line per member (its values, seed, final validation metrics),
                    then one per grid point (mean and std over seeds)
sweep.png           validation curves per grid point; final metric against each value
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from seqfunc import registry
from seqfunc.config import from_dict, to_dict
from seqfunc.errors import CheckpointError
from seqfunc.runs import files
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.lock import FolderLock
from seqfunc.runs.members import check_vmappable, mean_std, member_name
from seqfunc.runs.plots import ACCURACY_METRICS
from seqfunc.runs.sweep import grid_members, group_members, train_members
from seqfunc.serialization import atomic_write, read_json, write_json


def primary_metric(record: dict) -> tuple[str, bool]:
    """``(name, higher is better)``: the task's accuracy-like metric, else the loss."""
    for name in ACCURACY_METRICS:
        if name in record:
            return name, True
    return "loss", False


def run_sweep(
    base: TrainConfig,
    grid: dict[str, Sequence],
    seeds: Sequence[int],
    out_dir,
    *,
    max_members: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train every member, write the sweep folder, print the table; returns the best grid
    point's summary (``{"values", "metric", "mean", "std", "seeds"}``).

    Each vmapped job checkpoints under ``jobs/`` while it trains (``checkpoint_every`` steps,
    default ``eval_every``); SIGINT/SIGTERM write a checkpoint and raise
    :class:`~seqfunc.errors.RunInterrupted`, and :func:`resume_sweep` continues the sweep."""
    out = Path(out_dir)
    if (out / files.SWEEP).exists():
        raise CheckpointError(
            f"{out} already holds a sweep; resume it with "
            f"`seqfunc sweep --resume {out}` or choose another --out"
        )
    members = grid_members(base, grid, seeds)  # a bad grid fails before anything is written
    check_vmappable(registry.get_model(base.model), base.model)
    lock = FolderLock.acquire(out, what="sweep")  # one writer: runs/lock.py
    try:
        if (out / files.SWEEP).exists():  # started by another process meanwhile
            raise CheckpointError(
                f"{out} already holds a sweep; resume it with "
                f"`seqfunc sweep --resume {out}` or choose another --out"
            )
        write_json(
            out / files.SWEEP,
            {
                "base": to_dict(base),
                "grid": [[k, list(v)] for k, v in grid.items()],  # in order
                "seeds": list(seeds),
                "max_members": max_members,
            },
        )
        return _train_sweep(out, members, dict(grid), list(seeds), max_members, log)
    finally:
        lock.release()


def resume_sweep(out_dir, *, log: Callable[[str], None] = print) -> dict:
    """Continue the sweep folder ``out_dir`` with its saved base config, grid and seeds:
    finished jobs are read back, the interrupted one continues from its newest complete
    checkpoint; the folder ends as the uninterrupted sweep's."""
    out = Path(out_dir)
    if not (out / files.SWEEP).is_file():
        raise CheckpointError(f"{out}: not a sweep folder (no sweep.json)")
    saved = read_json(out / files.SWEEP)
    try:
        base = from_dict(TrainConfig, saved["base"], where=f"{out / files.SWEEP} base")
        grid, seeds = {name: values for name, values in saved["grid"]}, list(saved["seeds"])
        max_members = saved["max_members"]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"{out / files.SWEEP}: not a sweep description (base, grid, seeds, max_members)"
        ) from None
    members = grid_members(base, grid, seeds)
    with FolderLock.acquire(out, what="sweep"):
        return _train_sweep(out, members, grid, seeds, max_members, log)


def _train_sweep(
    out: Path, members: list[TrainConfig], grid: dict, seeds: list, max_members, log
) -> dict:
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    folders = [
        out / files.MEMBERS / member_name(i, points[i // len(seeds)], m.seed)
        for i, m in enumerate(members)
    ]
    jobs = group_members(members, max_members)
    curves: list[list[dict]] = [[] for _ in members]
    for number, job in enumerate(jobs, 1):
        records = _job_records(out, number, len(jobs), job, members, folders, log)
        for i, member_records in zip(job, records):
            curves[i] = [r for r in member_records if r["split"] == "val"]
    finals = [curve[-1] for curve in curves]
    summaries = _summaries(points, seeds, finals)
    lines = [
        {
            "member": i,
            "values": points[i // len(seeds)],
            "seed": cfg.seed,
            **{k: v for k, v in finals[i].items() if k not in ("split", "elapsed_s")},
        }
        for i, cfg in enumerate(members)
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines + summaries)
    atomic_write(
        out / files.SWEEP_SUMMARY, lambda tmp: Path(tmp).write_text(text, encoding="utf-8")
    )
    metric, higher = primary_metric(finals[0])
    best = (max if higher else min)(summaries, key=lambda s: s["mean"])
    for line in table(summaries, metric, best):
        log(line)
    if plot_sweep(points, seeds, curves, summaries, metric, out / files.SWEEP_PLOT) is None:
        log("matplotlib is not installed: no sweep.png (pip install 'seqfunc[plot]')")
    return best


def _job_records(
    out: Path, number: int, count: int, job: list[int], members, folders, log
) -> list[list[dict]]:
    """Train job ``number`` into its members' run folders (or read it back if they are
    complete); each member's records."""
    job_dir = out / files.JOBS / f"job-{number:03d}"
    done = [folders[i] for i in job if (folders[i] / files.STATE).is_file()]  # written last
    if len(done) == len(job):
        log(f"job {number}/{count}: {len(job)} members, already trained")
        records = [_read_records(folder / files.METRICS) for folder in done]
    else:
        log(f"job {number}/{count}: {len(job)} members in one vmapped step")
        result = train_members(
            [members[i] for i in job],
            log=log,
            folder=job_dir,
            member_dirs=[folders[i] for i in job],
            resume_hint=f"seqfunc sweep --resume {out}",
        )
        log(f"  trained in {result.train_s:.1f}s")
        records = list(result.records)
    shutil.rmtree(job_dir, ignore_errors=True)  # the member folders hold the job now
    return records


def _read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _summaries(points: list[dict], seeds: Sequence[int], finals: list[dict]) -> list[dict]:
    metric, _ = primary_metric(finals[0])
    summaries = []
    for p, values in enumerate(points):
        scores = [finals[p * len(seeds) + s][metric] for s in range(len(seeds))]
        mean, std = mean_std(scores)
        summaries.append(
            {
                "point": p,
                "values": values,
                "metric": metric,
                "mean": mean,
                "std": std,
                "seeds": list(seeds),
                "per_seed": scores,
            }
        )
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
    runner_up = sorted(
        (s for s in summaries if s is not best), key=lambda s: s["mean"], reverse=metric != "loss"
    )
    margin = (
        f", ahead of the next point by {abs(best['mean'] - runner_up[0]['mean']):.4f}"
        if runner_up
        else ""
    )
    lines.append(
        f"best: {values} (val {metric} {best['mean']:.4f} +- {best['std']:.4f} over "
        f"{len(best['seeds'])} seeds{margin})"
    )
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
        runs = curves[p * len(seeds) : (p + 1) * len(seeds)]
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
            ax.errorbar(
                [r["values"][name] for r in rows],
                [r["mean"] for r in rows],
                yerr=[r["std"] for r in rows],
                fmt="o-",
                capsize=3,
                label=label,
            )
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
