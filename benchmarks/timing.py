"""Interleaved timing for the throughput benchmarks.

The shared 2-core machines drift by up to 1.5x within minutes, so timing one contender after
the other measures the drift as much as the code. Here every contender runs a block of steps in
turn, round after round, and each is summarised by the median of its per-round times: the drift
lands on all of them alike.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved_seconds_per_step(
    contenders: dict[str, Callable[[int], object]], *, rounds: int, steps: int,
    sync: Callable[[object], None] = lambda out: None,
) -> dict[str, float]:
    """``contenders[name](i)`` runs training step ``i`` and returns something ``sync`` waits
    on (a loss tensor). Each round runs ``steps`` steps of every contender in turn; returns the
    median over ``rounds`` rounds of the seconds per step of each."""
    per_round: dict[str, list[float]] = {name: [] for name in contenders}
    i = 0
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            for j in range(i, i + steps):
                out = run(j)
            sync(out)
            per_round[name].append((time.perf_counter() - start) / steps)
        i += steps
    return {name: statistics.median(times) for name, times in per_round.items()}
