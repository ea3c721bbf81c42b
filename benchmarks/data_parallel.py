"""Data-parallel scaling on this machine: the formula Transformer's training step with one
process on two threads, one process on one thread, and two processes of one thread each in a
gloo group (``torch.distributed``), all on the same global batch.

Each contender is a long-lived worker (the two ranks of the group are two workers) that builds
the run from ``seqfunc train formula``'s recipe exactly as the CLI does, warms up, then waits
for orders; the parent runs a block of steps of every contender in turn, round after round
(median round of each), so the machine's drift lands on all of them alike. Idle workers block
on their queue and use no CPU.

* examples/s = global batch rows / seconds per step;
* efficiency = examples/s of 2 x 1 / (2 x examples/s of 1 x 1): 1.0 is perfect scaling;
* allreduce fraction = seconds of one all-reduce of the step's packed vector (flat gradient,
  loss and metrics), timed alone between the blocks on the same group, / seconds per step of
  2 x 1;
* where the rest goes: the efficiency is the product of the half-batch step's cost against
  half the whole one's (1x1 on half the batch), of sharing the machine (two such processes at
  once, in no group) and of the group's all-reduce and sharding (2x1 against those two).

    python benchmarks/data_parallel.py [--rounds 7] [--steps 20] [--compile] [-- TRAIN FLAGS]

Last line: JSON {examples_per_s_1x2, examples_per_s_1x1, examples_per_s_2x1, efficiency,
allreduce_fraction, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import time

import torch
import torch.multiprocessing as mp

CONTENDERS = {"1x2": (1, 2), "1x1": (1, 1), "2x1": (2, 1)}  # name: (processes, threads each)
#: Where the efficiency goes: one process of one thread on half the global batch (what a
#: rank's step costs alone), and two such processes stepping at the same time in no group
#: (2x1 without its all-reduce: the two cores sharing the machine).
SOLO = {"1x1 half": 1, "2x1 no group": 2}  # name: processes, each on half the batch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(
    rank: int,
    world: int,
    threads: int,
    port: int,
    argv: list[str],
    orders: mp.Queue,
    replies: mp.Queue,
    halves: bool = False,
) -> None:
    """A contender's process: rank ``rank`` of a group of ``world`` on ``port``, or, with
    ``halves``, a process of no group stepping on half the global batch."""
    torch.set_num_threads(threads)
    import attrs

    from seqfunc.cli import build_parser
    from seqfunc.cli.train import resolve_config
    from seqfunc.runs import distributed
    from seqfunc.runs.state import Progress
    from seqfunc.runs.trainer import Trainer
    from seqfunc.tree import tree_leaves

    ranks = None
    if world > 1 and not halves:
        os.environ.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        ranks = distributed.init("cpu")
    cfg = resolve_config(build_parser().parse_args(["train", "formula", *argv]))
    global_batch = cfg.batch_size
    if halves:
        cfg = attrs.evolve(cfg, batch_size=-(-global_batch // 2))
    trainer = Trainer(cfg, ranks)
    state, at = trainer.initial_state(), Progress()
    batches = trainer.batches(at)
    # The step's all-reduce packs the flat gradient with the loss and a few metrics.
    packed = sum(p.numel() for p in tree_leaves(state.params)) + 8

    def run_steps(n: int) -> float:
        nonlocal state
        start = time.perf_counter()
        for _ in range(n):
            epoch, index, batch = next(batches)
            state, metrics, _ = trainer.step(state, batch, at.step)
            at.advance(epoch, index)
        float(metrics["loss"])
        return (time.perf_counter() - start) / n

    def run_all_reduces(n: int) -> float:
        vector = torch.zeros(packed)  # summed in place: zeros stay zeros
        start = time.perf_counter()
        for _ in range(n):
            distributed.all_reduce_sum(vector)
        return (time.perf_counter() - start) / n

    while True:
        order, n = orders.get()
        if order == "stop":
            break
        seconds = run_steps(n) if order == "steps" else run_all_reduces(n)
        replies.put((global_batch, seconds, trainer.compiled))
    distributed.shutdown()


class Contender:
    """The worker processes of one (processes x threads) setting, driven by orders."""

    def __init__(self, ctx, world: int, threads: int, argv: list[str], halves: bool = False):
        port, self.replies = free_port(), ctx.Queue()
        self.orders = [ctx.Queue() for _ in range(world)]
        self.procs = [
            ctx.Process(
                target=worker, args=(r, world, threads, port, argv, q, self.replies, halves)
            )
            for r, q in enumerate(self.orders)
        ]
        for p in self.procs:
            p.start()

    def ask(self, order: str, n: int):
        """Every worker's reply ``(global batch, seconds, compiled)``; the slowest one's."""
        for q in self.orders:
            q.put((order, n))
        replies = [self.replies.get(timeout=900) for _ in self.orders]
        return max(replies, key=lambda reply: reply[1])

    def close(self) -> None:
        for q in self.orders:
            q.put(("stop", 0))
        for p in self.procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="steps per contender per round")
    parser.add_argument("--warmup", type=int, default=30, help="steps before timing")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="compiled steps (default: as `seqfunc train formula` runs on the CPU, eager)",
    )
    parser.add_argument("train_flags", nargs="*", help="more `seqfunc train` flags, after --")
    args = parser.parse_args()
    argv = [*(["--compile"] if args.compile else []), *args.train_flags]

    ctx = mp.get_context("spawn")
    contenders = {
        name: Contender(ctx, world, threads, argv) for name, (world, threads) in CONTENDERS.items()
    }
    contenders.update(
        {name: Contender(ctx, processes, 1, argv, halves=True) for name, processes in SOLO.items()}
    )
    try:
        for contender in contenders.values():  # one at a time: compiling is CPU-bound
            rows, _, compiled = contender.ask("steps", args.warmup)
        per_round: dict[str, list[float]] = {name: [] for name in contenders}
        all_reduce: list[float] = []
        for _ in range(args.rounds):
            for name, contender in contenders.items():
                per_round[name].append(contender.ask("steps", args.steps)[1])
            all_reduce.append(contenders["2x1"].ask("all_reduce", args.steps)[1])
    finally:
        for contender in contenders.values():
            contender.close()

    step_s = {name: statistics.median(times) for name, times in per_round.items()}
    examples = {name: -(-rows // 2) if name == "1x1 half" else rows for name in step_s}
    throughput = {name: examples[name] / s for name, s in step_s.items()}
    efficiency = throughput["2x1"] / (2 * throughput["1x1"])
    all_reduce_s = statistics.median(all_reduce)
    # efficiency = t(1x1) / (2 t(2x1)), a product of three factors (1.0: nothing lost):
    factors = {
        "half_batch_step": step_s["1x1"] / (2 * step_s["1x1 half"]),
        "sharing_the_machine": step_s["1x1 half"] / step_s["2x1 no group"],
        "all_reduce_and_shard": step_s["2x1 no group"] / step_s["2x1"],
    }
    print(
        f"formula Transformer, global batch {rows}, {'compiled' if compiled else 'eager'}, "
        f"median of {args.rounds} interleaved rounds of {args.steps} steps"
    )
    print(f"{'processes x threads':>20} {'ms / step':>10} {'examples / s':>13}")
    for name in contenders:
        print(f"{name:>20} {1e3 * step_s[name]:>10.2f} {throughput[name]:>13.0f}")
    print(
        f"scaling efficiency 2x1 / (2 * 1x1): {efficiency:.3f}   (1x2 / 1x1: "
        f"{throughput['1x2'] / throughput['1x1']:.2f}x)"
    )
    print(
        f"all-reduce of the packed gradient: {1e3 * all_reduce_s:.2f} ms, "
        f"{all_reduce_s / step_s['2x1']:.1%} of the 2x1 step"
    )
    print(
        "efficiency = the product of: "
        + ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in factors.items())
    )
    print(
        json.dumps(
            {
                "examples_per_s_1x2": round(throughput["1x2"], 1),
                "examples_per_s_1x1": round(throughput["1x1"], 1),
                "examples_per_s_2x1": round(throughput["2x1"], 1),
                "efficiency": round(efficiency, 4),
                "allreduce_fraction": round(all_reduce_s / step_s["2x1"], 4),
                "efficiency_factors": {k: round(v, 4) for k, v in factors.items()},
                "step_ms": {name: round(1e3 * s, 3) for name, s in step_s.items()},
                "allreduce_ms": round(1e3 * all_reduce_s, 3),
                "global_batch": rows,
                "compiled": compiled,
                "rounds": args.rounds,
                "steps": args.steps,
            }
        )
    )


if __name__ == "__main__":
    main()
