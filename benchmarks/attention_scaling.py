"""Forward + backward time and peak memory of each attention kernel against sequence length.

    python benchmarks/attention_scaling.py

One causal self-attention call ``(b=1, h=1, t, d=64)`` per kernel (``causal=True``, no mask
tensor, so no kernel is charged for a ``t x t`` mask), then ``out.sum().backward()``.

* time: median wall-clock of ``--repeats`` runs after one warm-up (``--threads``, default 1).
* peak memory: the CPU allocator's own events, recorded by torch's profiler
  (``profile_memory``): the running sum of bytes allocated minus bytes freed during forward +
  backward, its maximum. Inputs are allocated before and not counted; their gradients are.
  This is exact for tensors; it ignores Python objects and allocator slack.

The exponents are least-squares slopes of log(time) and log(memory) against log(length) over
the lengths >= ``--fit-from`` (default 1024: below that fixed per-call costs dominate). The
kernels whose memory is quadratic are capped (``--max-quadratic``, ``--max-additive``) to keep
the default run under ~10 minutes on 2 cores. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
from torch.autograd import (
    ProfilerConfig,
    ProfilerState,
    _disable_profiler,
    _enable_profiler,
    _prepare_profiler,
)
from torch.profiler import ProfilerActivity

from seqfunc import rng
from seqfunc.nn.attention_kernels import attention_kernel

KERNELS = {
    "dot": "dot",
    "full": "full",
    "simple": "simple",
    "additive": {"kind": "additive", "hidden": 16},
    "linear": "linear",
    "window": {"kind": "window", "window": 64},
    "chunked": {"kind": "chunked", "chunk": 256},
}
QUADRATIC_MEMORY = ("full", "simple")


def make_inputs(t: int, d: int, heads: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, heads, t, d, generator=g).requires_grad_() for _ in range(3)]


def forward_backward(kernel, params, q, k, v) -> None:
    kernel.apply(params, q, k, v, causal=True).sum().backward()


def peak_bytes(fn) -> int:
    """Max over time of (bytes allocated - bytes freed) during ``fn()``, from the CPU
    allocator events that torch's profiler records."""
    config = ProfilerConfig(
        ProfilerState.KINETO,
        False,
        True,
        False,
        False,
        False,
        torch._C._profiler._ExperimentalConfig(),
    )
    activities = {ProfilerActivity.CPU}
    _prepare_profiler(config, activities)
    _enable_profiler(config, activities)
    try:
        fn()
    finally:
        result = _disable_profiler()
    events = sorted((e.start_ns(), e.nbytes()) for e in result.events() if e.name() == "[memory]")
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def measure(name: str, t: int, args) -> dict:
    kernel = attention_kernel(KERNELS[name])
    params = kernel.init(rng.key(0), args.heads, args.d)
    q, k, v = make_inputs(t, args.d, args.heads)
    run = lambda: forward_backward(kernel, params, q, k, v)
    run()  # warm-up
    times = []
    for _ in range(args.repeats):
        for x in (q, k, v):
            x.grad = None
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    for x in (q, k, v):
        x.grad = None
    return {
        "kernel": name,
        "length": t,
        "time_s": statistics.median(times),
        "peak_bytes": peak_bytes(run),
    }


def slope(xs, ys) -> float:
    """Least-squares slope of log(ys) against log(xs)."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-12)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    var = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / var if var else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096, 8192])
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    p.add_argument("--d", type=int, default=64, help="head size")
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--fit-from", type=int, default=1024)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: steadier when other jobs share the cores)",
    )
    p.add_argument(
        "--max-quadratic",
        type=int,
        default=8192,
        help="longest length for full and simple attention",
    )
    p.add_argument(
        "--max-additive",
        type=int,
        default=2048,
        help="longest length for additive attention (its memory is t^2 * hidden)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    print(
        f"attention forward+backward, causal, b=1, h={args.heads}, d={args.d}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{'kernel':<9} {'length':>7} {'time ms':>10} {'peak MiB':>10}")
    peak_bytes(lambda: None)  # the profiler's first start is slow: not part of any figure
    rows = []
    for name in args.kernels:
        cap = {"additive": args.max_additive}.get(
            name, args.max_quadratic if name in QUADRATIC_MEMORY else max(args.lengths)
        )
        for t in sorted(args.lengths):
            if t > cap:
                print(f"{name:<9} {t:>7} {'skipped (cap ' + str(cap) + ')':>21}")
                continue
            row = measure(name, t, args)
            rows.append(row)
            print(
                f"{name:<9} {t:>7} {1000 * row['time_s']:>10.1f} "
                f"{row['peak_bytes'] / 2**20:>10.2f}",
                flush=True,
            )

    exponents = {}
    for name in args.kernels:
        fit = [r for r in rows if r["kernel"] == name and r["length"] >= args.fit_from]
        if len(fit) >= 2:
            lengths = [r["length"] for r in fit]
            exponents[name] = {
                "time": round(slope(lengths, [r["time_s"] for r in fit]), 3),
                "memory": round(slope(lengths, [r["peak_bytes"] for r in fit]), 3),
                "lengths": [min(lengths), max(lengths)],
            }
    print()
    print(f"fitted exponents (log-log least squares, lengths >= {args.fit_from}):")
    print(f"{'kernel':<9} {'time':>6} {'memory':>7}")
    for name, e in exponents.items():
        print(f"{name:<9} {e['time']:>6.2f} {e['memory']:>7.2f}")
    print(
        json.dumps(
            {
                "benchmark": "attention_scaling",
                "d": args.d,
                "heads": args.heads,
                "causal": True,
                "fit_from": args.fit_from,
                "exponents": exponents,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
