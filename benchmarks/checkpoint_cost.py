"""What a checkpoint costs against the training it protects.

For the default recipe of Tiny Shakespeare (the GPT) and of the formula calculator (the
encoder-decoder Transformer): the seconds of one training step and of one checkpoint (the run
folder's real writer: safetensors, fsync, rename, prune), interleaved round by round (median
round of each), and the fraction of the run's wall time the default ``checkpoint_every`` (at
every evaluation) adds: ``checkpoint_s / (checkpoint_every * step_s)``.

    python benchmarks/checkpoint_cost.py [--rounds 7] [--steps 10]

Last line: JSON {MODEL: {checkpoint_s, step_s, checkpoint_every, overhead_fraction}, ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from seqfunc.cli import build_parser
from seqfunc.cli.train import resolve_config
from seqfunc.runs.folder import RunFolder
from seqfunc.runs.state import Progress
from seqfunc.runs.trainer import Trainer

RECIPES = {"shakespeare GPT": ["train", "shakespeare"], "formula Transformer": ["train", "formula"]}


def measure(argv: list[str], rounds: int, steps: int) -> dict:
    cfg = resolve_config(build_parser().parse_args(argv))
    trainer = Trainer(cfg)
    state, at = trainer.initial_state(), Progress()
    batches = trainer.batches(at)
    for _ in range(3):  # warm-up
        epoch, index, batch = next(batches)
        state, _, _ = trainer.step(state, batch, at.step)
        at.advance(epoch, index)
    step_times, checkpoint_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(tmp)
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(steps):
                epoch, index, batch = next(batches)
                state, metrics, _ = trainer.step(state, batch, at.step)
                at.advance(epoch, index)
            float(metrics["loss"])
            step_times.append((time.perf_counter() - start) / steps)
            start = time.perf_counter()
            folder.write_checkpoint(
                at.step, state.params, state.opt_state, at.to_json(), cfg.keep_checkpoints
            )
            checkpoint_times.append(time.perf_counter() - start)
    step_s, checkpoint_s = statistics.median(step_times), statistics.median(checkpoint_times)
    every = trainer.checkpoint_every
    return {
        "checkpoint_s": round(checkpoint_s, 5),
        "step_s": round(step_s, 5),
        "checkpoint_every": every,
        "total_steps": trainer.total_steps,
        "overhead_fraction": round(checkpoint_s / (every * step_s), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    args = parser.parse_args()
    results = {name: measure(argv, args.rounds, args.steps) for name, argv in RECIPES.items()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.rounds} rounds"
    )
    print(f"{'model':<22}{'step ms':>10}{'checkpoint ms':>15}{'every':>8}{'overhead':>11}  goal")
    for name, r in results.items():
        print(
            f"{name:<22}{r['step_s'] * 1e3:>10.1f}{r['checkpoint_s'] * 1e3:>15.1f}"
            f"{r['checkpoint_every']:>8}{r['overhead_fraction']:>10.3%}  <= 2 %"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
