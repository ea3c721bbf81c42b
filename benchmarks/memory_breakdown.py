"""What holds the memory of one step of :mod:`memory`'s cases: live tensor bytes from torch's
CPU allocator, not the process's resident set.

torch.profiler (``profile_memory=True``) records every allocation and free of the step; this
replays them and reports, above what was alive before the step, the peak before the optimizer
(forward and backward) and the peak of the whole step, then the tensors alive at the first
peak, grouped by size and by the code that allocated them.

    python benchmarks/memory_breakdown.py [--cases floor plain remat] [--batch 4] [--top 8]

With ``floor``, ``plain`` and ``remat`` among the cases it also gives recomputation's share
of the activation memory in live bytes: ``(remat - floor) / (plain - floor)`` of the peaks
before the optimizer (the forward and the backward, where the activations live).
Last line: JSON {each case: {before_optimizer_mib, step_mib}, remat_live_activation_fraction}.

It uses torch's private ``torch.profiler._memory_profiler`` (torch 2.13). The resident set
:mod:`memory` measures is larger: glibc's heap keeps freed pages, and the optimizer's vectors
do not fit in the holes the freed activations leave (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json

import torch
from memory import CASES
from torch.profiler import ProfilerActivity, profile
from torch.profiler._memory_profiler import Action

MIB = 2**20


def profiled_step(case: str, batch: int):
    """The profile of the first step of ``case`` (one thread, as :mod:`memory` runs it)."""
    torch.set_num_threads(1)
    run = CASES[case](batch)
    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        float(run(0))
    return prof


def op_spans(prof) -> list[tuple[int, int, str]]:
    """``(start ns, end ns, name)`` of the profiled ops and Python frames, by start."""
    spans = []
    for event in prof.profiler.kineto_results.events():
        try:
            name = event.name()
        except UnicodeDecodeError:  # a few frames' names are not UTF-8
            continue
        if name != "[memory]":
            spans.append((event.start_ns(), event.start_ns() + event.duration_ns(), name))
    return sorted(spans)


def where(spans, starts, t: int) -> str:
    """The innermost seqfunc frames (and the autograd node) running at ``t``."""
    first = bisect.bisect_right(starts, t)
    frames = [n for s, e, n in spans[max(0, first - 3000) : first] if s <= t <= e]
    ours = [f.split("seqfunc/")[-1] for f in frames if "seqfunc/" in f or "engine::" in f]
    return " > ".join(ours[-3:]) or "(outside seqfunc)"


def breakdown(case: str, batch: int, top: int) -> tuple[float, float]:
    """Print what holds ``case``'s memory; ``(peak before the optimizer, peak of the step)``
    in MiB above what was alive before the step."""
    prof = profiled_step(case, batch)
    spans = op_spans(prof)
    starts = [s for s, _, _ in spans]
    optimizer_start = min((s for s, _, n in spans if "optim.py" in n), default=None)
    live, born, added = {}, {}, 0
    step_peak, before_optimizer = 0, (0, None, {})
    for t, action, (key, _), size in prof._memory_profile().timeline:
        if key.device.type != "cpu" or action == Action.PREEXISTING:
            continue
        if action == Action.CREATE:
            added += size - live.get(key, 0)  # an id can be created again: replace, not add
            live[key], born[key] = size, t
        elif action == Action.DESTROY:
            added -= live.pop(key, 0)
        step_peak = max(step_peak, added)
        if added > before_optimizer[0] and (optimizer_start is None or t < optimizer_start):
            before_optimizer = (added, t, dict(live))
    peak, t, alive = before_optimizer
    print(f"{case}, batch {batch}: live bytes added by the step, MiB")
    print(f"  peak before the optimizer {peak / MIB:8.1f}  (at {where(spans, starts, t)})")
    print(f"  peak of the step          {step_peak / MIB:8.1f}")
    by_size = collections.defaultdict(collections.Counter)
    for key, size in alive.items():
        by_size[size][where(spans, starts, born[key])] += 1
    rows = sorted(by_size.items(), key=lambda item: -item[0] * item[1].total())
    print("  alive at the first peak: size x count, allocated in")
    for size, origins in rows[:top]:
        print(f"  {size / MIB:9.3f} x {origins.total():<3}")
        for origin, count in origins.most_common(3):
            print(f"      {count:3d}  {origin}")
    return peak / MIB, step_peak / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", nargs="+", choices=sorted(CASES), default=["floor", "plain", "remat"]
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    peaks = {case: breakdown(case, args.batch, args.top) for case in args.cases}
    print(f"\n{'case':>10}  {'before optimizer':>16}  {'step':>8}  (live MiB)")
    for case, (before, step) in peaks.items():
        print(f"{case:>10}  {before:>16.1f}  {step:>8.1f}")
    result = {
        case: {"before_optimizer_mib": round(before, 1), "step_mib": round(step, 1)}
        for case, (before, step) in peaks.items()
    }
    if {"floor", "plain", "remat"} <= peaks.keys():
        floor = peaks["floor"][0]
        fraction = (peaks["remat"][0] - floor) / (peaks["plain"][0] - floor)
        print(f"recomputation keeps {fraction:.2f} of the activations' live bytes")
        result["remat_live_activation_fraction"] = round(fraction, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
