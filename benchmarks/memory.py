"""Peak memory of one training step with and without recomputed blocks, and with gradient
accumulation against the step of one micro-batch.

The model: a GPT of 8 layers, d_model 256, 4 heads, context 1024, vocabulary 65, dropout 0.1,
AdamW; the eager step of :func:`seqfunc.train.make_step` (the CPU's default).

How memory is measured on the CPU: each case runs in a subprocess of its own, which builds
the model, its optimizer state and its batch, reads its peak resident set size
(``resource.getrusage``'s ``ru_maxrss``), runs one step and reads it again; the case's
figure is the difference, the memory the step itself added at its peak. Activation memory
is that figure less a floor case's (one row of 16 tokens: the gradient and the optimizer's
temporaries, with next to no activations).

Each case runs ``--repeats`` times (a fresh subprocess each) and its figure is the median.
One run is not reproducible: the same case, same code, reads 445 and 491 MiB (remat) or 210
and 250 MiB (floor) in consecutive runs, because the figure is mostly what glibc's heap
keeps of freed blocks (see below), whose layout varies from process to process. A single
run moves the activation fraction by several hundredths, more than the goal's margin; the
median of three keeps one odd process from deciding it. The table shows each case's range.

What the resident set holds: glibc's heap keeps the pages of freed blocks, and the
optimizer's vectors do not fit in the holes the freed activations leave, so a step's peak is
about the heap's high-water mark in the forward and backward plus the optimizer's vectors,
not the live tensor bytes (:mod:`memory_breakdown` counts those; docs/performance.md).

* ``remat_activation_fraction``: activation memory with ``remat=true`` over that without
  (goal <= 1/3), at batch 4;
* ``remat_time_ratio``: seconds a step with ``remat=true`` over without (goal <= 1.4),
  timed interleaved in this process (:mod:`timing`), median round;
* ``accumulate_peak_ratio``: the step of 8 rows accumulated in 8 micro-batches over the step
  of one row (goal <= 1.1).

    python benchmarks/memory.py [--batch 4] [--rounds 3] [--repeats 3]

Last line: JSON {remat_activation_fraction, remat_time_ratio, accumulate_peak_ratio, and
each case's MiB (median) and range}.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys

import torch
from timing import interleaved_seconds_per_step

from seqfunc import optim, rng
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.runs.distributed import micro_batches, sharded_loss
from seqfunc.tasks.language_model import LanguageModelTask
from seqfunc.train import init_state, make_step

SHAPE = dict(vocab_size=65, context=1024, d_model=256, heads=4, layers=8, dropout=0.1)


def stepper(rows: int, tokens: int = 1024, remat: bool = False, accumulate: int = 1):
    """``run(i) -> loss``: step ``i`` on a fixed batch of ``rows`` x ``tokens``."""
    model = GPT(GPTConfig(**{**SHAPE, "remat": remat}))
    optimizer = optim.flatten(
        optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(3e-4, weight_decay=0.1))
    )
    task = LanguageModelTask()
    loss_fn = task.loss_fn(model)
    step = make_step(sharded_loss(loss_fn) if accumulate > 1 else loss_fn, optimizer)
    data = (rng.random_bits(rng.key(1), (rows, tokens + 1)) % 65).long()
    batch = {"inputs": data[:, :-1], "targets": data[:, 1:]}
    if accumulate > 1:
        batch = micro_batches(batch, accumulate, task.target_count)
    box = {"state": init_state(model.init(rng.key(0)), optimizer)}

    def run(i: int):
        box["state"], metrics = step(box["state"], batch, rng.fold_in(rng.key(2), i))
        return metrics["loss"]

    return run


CASES = {
    "floor": lambda batch: stepper(1, tokens=16),
    "plain": lambda batch: stepper(batch),
    "remat": lambda batch: stepper(batch, remat=True),
    "one_row": lambda batch: stepper(1),
    "accumulate_8": lambda batch: stepper(8, accumulate=8),
}


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(case: str, batch: int) -> None:
    """In a subprocess: the step's added peak memory in MiB, as JSON on stdout."""
    torch.set_num_threads(1)  # the same intra-op buffers in every case
    run = CASES[case](batch)
    before = peak_kib()
    float(run(0))
    print(json.dumps({"case": case, "mib": (peak_kib() - before) / 1024}))


def case_mib(case: str, batch: int) -> float:
    """One run of ``case`` in a fresh subprocess: the step's added peak in MiB."""
    out = subprocess.run(
        [sys.executable, __file__, "--case", case, "--batch", str(batch)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="subprocesses per case")
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        return measure(args.case, args.batch)

    runs = {case: [case_mib(case, args.batch) for _ in range(args.repeats)] for case in CASES}
    mib = {case: statistics.median(values) for case, values in runs.items()}
    activations = {k: mib[k] - mib["floor"] for k in ("plain", "remat")}
    fraction = activations["remat"] / activations["plain"]
    accumulate_ratio = mib["accumulate_8"] / mib["one_row"]
    seconds = interleaved_seconds_per_step(
        {"plain": stepper(args.batch), "remat": stepper(args.batch, remat=True)},
        rounds=args.rounds,
        steps=1,
        sync=float,
    )
    time_ratio = seconds["remat"].median / seconds["plain"].median

    print(
        f"GPT {SHAPE['layers']}x{SHAPE['d_model']}, context {SHAPE['context']}, eager; "
        f"peak RSS added by one step, median of {args.repeats} subprocesses per case"
    )
    print(f"{'case':<34}{'MiB':>10}{'range':>18}")
    names = {
        "floor": "floor (1 x 16 tokens)",
        "plain": f"batch {args.batch}",
        "remat": f"batch {args.batch}, remat",
        "one_row": "1 row (a micro-batch of 8)",
        "accumulate_8": "8 rows, accumulate=8",
    }
    for case, label in names.items():
        spread = f"{min(runs[case]):.0f} - {max(runs[case]):.0f}"
        print(f"{label:<34}{mib[case]:>10.1f}{spread:>18}")
    print(
        f"activations: {activations['plain']:.1f} MiB plain, {activations['remat']:.1f} MiB "
        f"remat ({fraction:.2f}); remat step time {time_ratio:.2f}x (median of "
        f"{args.rounds} interleaved rounds); accumulation peak {accumulate_ratio:.2f}x the "
        "one-row step's"
    )
    print(
        json.dumps(
            {
                "remat_activation_fraction": round(fraction, 3),
                "remat_time_ratio": round(time_ratio, 3),
                "accumulate_peak_ratio": round(accumulate_ratio, 3),
                "mib": {k: round(v, 1) for k, v in mib.items()},
                "mib_range": {k: [round(min(v), 1), round(max(v), 1)] for k, v in runs.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
