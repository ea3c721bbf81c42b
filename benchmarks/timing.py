"""Interleaved timing for the throughput benchmarks.

The shared 2-core machines drift by up to 1.5x within minutes, so timing one contender after
the other measures the drift as much as the code. Here every contender runs a block of steps in
turn, round after round, and each is summarised by the median of its per-round times: the drift
lands on all of them alike. The fastest round of each is reported too: the code's speed with
the least interference (``timeit``'s reasoning for taking the minimum).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import NamedTuple


class StepSeconds(NamedTuple):
    median: float  # seconds per step in the median round
    best: float  # ... in the fastest round


def interleaved_seconds_per_step(
    contenders: dict[str, Callable[[int], object]],
    *,
    rounds: int,
    steps: int,
    sync: Callable[[object], None] = lambda out: None,
) -> dict[str, StepSeconds]:
    """``contenders[name](i)`` runs training step ``i`` and returns something ``sync`` waits
    on (a loss tensor). Each round runs ``steps`` steps of every contender in turn; returns,
    for each, the seconds per step of its median and of its fastest round out of ``rounds``."""
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
    return {
        name: StepSeconds(statistics.median(times), min(times)) for name, times in per_round.items()
    }
