"""Tiny Shakespeare's recipe in bf16 against fp32: is the final loss within the seeds' noise?

Runs ``seqfunc train shakespeare --seed S -t precision=P`` for every seed in both precisions,
the two precisions alternating seed by seed, and reads each run's last validation loss
(nats/char) from its ``metrics.jsonl``. The recipe is a fixed number of steps, so the losses do
not depend on the machine's load (the wall times do).

bf16 is "within the noise of fp32" when the difference of the two means is at most twice its
standard error (Welch: ``sqrt(s_fp32^2 / n + s_bf16^2 / n)``, ``s`` the sample standard
deviation over seeds), that is ``|t| <= 2``.

    python benchmarks/precision_recipe.py [--seeds 0 1 2] [--threads 1] [--steps N] [--out DIR]

``--threads N`` runs each training with N threads (``OMP_NUM_THREADS``; default: torch's own
choice). The thread count changes the order of float sums and with it a run's last digits,
so a fixed count makes the losses the same on any machine.

``--steps`` shortens the recipe (a smoke test; the figures are then not the recipe's).
Last line: JSON {fp32_losses, bf16_losses, fp32_mean, bf16_mean, difference, t,
within_noise, fp32_seconds, bf16_seconds, steps, threads, avx512_bf16}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from precision import cpu_flags

PRECISIONS = ("fp32", "bf16")


def last_validation_loss(folder: Path) -> float:
    """The loss of the last ``"split": "val"`` record of a run folder's ``metrics.jsonl``."""
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return float([r for r in records if r.get("split") == "val"][-1]["loss"])


def train(
    precision: str, seed: int, steps: int | None, threads: int | None, out: Path
) -> tuple[float, float]:
    """``(final validation loss, wall seconds)`` of one run of the recipe."""
    folder = out / f"{precision}-seed{seed}"
    argv = [sys.executable, "-m", "seqfunc", "train", "shakespeare", "--no-progress"]
    argv += ["--seed", str(seed), "-t", f"precision={precision}", "--out", str(folder)]
    if steps is not None:
        argv += ["--steps", str(steps)]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return last_validation_loss(folder), time.perf_counter() - start


def welch_t(a: list[float], b: list[float]) -> float:
    """``(mean(b) - mean(a)) / sqrt(var(a) / n_a + var(b) / n_b)`` (inf for zero spread)."""
    error = (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5
    difference = statistics.fmean(b) - statistics.fmean(a)
    return difference / error if error else (0.0 if difference == 0 else float("inf"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("--seeds: give at least two seeds (the noise is their spread)")

    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        losses = {p: [] for p in PRECISIONS}
        seconds = {p: [] for p in PRECISIONS}
        print(f"{'seed':>4}  {'precision':>9}  {'val loss':>9}  {'seconds':>8}")
        for seed in args.seeds:
            for precision in PRECISIONS:
                loss, wall = train(precision, seed, args.steps, args.threads, out)
                losses[precision].append(loss)
                seconds[precision].append(wall)
                print(f"{seed:>4}  {precision:>9}  {loss:>9.4f}  {wall:>8.0f}", flush=True)

    means = {p: statistics.fmean(losses[p]) for p in PRECISIONS}
    spread = {p: statistics.stdev(losses[p]) for p in PRECISIONS}
    t = welch_t(losses["fp32"], losses["bf16"])
    for p in PRECISIONS:
        print(f"{p}: mean {means[p]:.4f} nats/char, standard deviation {spread[p]:.4f}")
    difference = means["bf16"] - means["fp32"]
    within = abs(t) <= 2
    print(f"bf16 - fp32: {difference:+.4f} nats/char, t = {t:+.2f}: ", end="")
    print("within the noise of fp32" if within else "outside the noise of fp32")
    result = {
        "fp32_losses": losses["fp32"],
        "bf16_losses": losses["bf16"],
        "fp32_mean": means["fp32"],
        "bf16_mean": means["bf16"],
        "difference": difference,
        "t": t,
        "within_noise": within,
        "fp32_seconds": statistics.median(seconds["fp32"]),
        "bf16_seconds": statistics.median(seconds["bf16"]),
        "steps": args.steps,
        "threads": args.threads,
        "avx512_bf16": "avx512_bf16" in cpu_flags(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
