"""8 seeds of one classifier: one vmapped ensemble step vs 8 runs one after another.

Same model, same data (IMDb-synth batches), same optimizer and step count; CPU. The
sequential runs take the eager step ``seqfunc train`` takes on the CPU; the vmapped step runs
eagerly and compiled (its compile time is not timed: it is paid once per batch shape).
Only the training steps are timed (batches are built beforehand); median of interleaved rounds.

    python benchmarks/ensemble.py [--members 8] [--steps 100]

Last line: one JSON object {"sequential_s", "vmapped_s", "speedup_eager", "speedup_compiled",
"speedup" (the better of the two), ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from seqfunc import rng
from seqfunc.members_step import init_members_state, make_members_step, member_keys, step_keys
from seqfunc.runs import TrainConfig, build, make_optimizer
from seqfunc.train import init_state, make_step
from seqfunc.tree import tree_stack


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--model", default="transformer-classifier")
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--blocks", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core CPU two threads per tiny op "
        "can be 20x slower; 0 = torch's default)",
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="skip the compiled vmapped step")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    options = {"d_model": args.d_model, "heads": 4}
    if args.model == "transformer-classifier":
        options["blocks"] = args.blocks
    cfg = TrainConfig(
        dataset="imdb-synth",
        model=args.model,
        model_options=options,
        dataset_options={"train_size": args.batch_size * args.steps, "val_size": 100},
        steps=args.steps,
        batch_size=args.batch_size,
        lr=3e-3,
        clip_norm=1.0,
    )
    dataset, model, task = build(cfg)
    batches = list(dataset.batches("train", cfg.batch_size))[: args.steps]
    seeds = list(range(args.members))
    loss_fn = task.loss_fn(model)

    optimizer = make_optimizer(cfg, args.steps)
    step = make_step(loss_fn, optimizer)
    step(init_state(model.init(rng.key(0)), optimizer), batches[0], rng.key(0))  # warm-up

    def sequential() -> tuple[float, list[float]]:
        """The stepper fit uses, once per seed."""
        start, losses = time.perf_counter(), []
        for seed in seeds:
            k_init, k_train = rng.split(rng.key(seed))
            state = init_state(model.init(k_init), optimizer)
            for i, batch in enumerate(batches):
                state, metrics = step(state, batch, rng.fold_in(k_train, i))
            losses.append(float(metrics["loss"]))
        return time.perf_counter() - start, losses

    base = make_optimizer(cfg, args.steps, rows=True)  # fit_ensemble's
    init_keys, train_keys = member_keys(seeds)

    def vmapped_runner(compile: bool):
        """Every seed in one step (compiled or eager); the compile happens here, untimed."""
        ens_step = make_members_step(loss_fn, base, compile=compile)
        fresh = lambda: init_members_state(tree_stack([model.init(k) for k in init_keys]), base)
        for batch in {b["tokens"].shape: b for b in batches}.values():  # warm-up, every shape
            ens_step(fresh(), batch, step_keys(train_keys, 0))

        def run() -> tuple[float, list[float]]:
            start, state = time.perf_counter(), fresh()
            for i, batch in enumerate(batches):
                state, metrics = ens_step(state, batch, step_keys(train_keys, i))
            return time.perf_counter() - start, metrics["loss"].tolist()

        return run

    modes = {"sequential": sequential, "vmapped": vmapped_runner(False)}
    if not args.no_compile:
        modes["vmapped, compiled"] = vmapped_runner(True)
    times = {mode: [] for mode in modes}
    losses = {}
    for _ in range(args.rounds):  # interleaved rounds
        for mode, run in modes.items():
            seconds, losses[mode] = run()
            times[mode].append(seconds)
    median = {mode: statistics.median(t) for mode, t in times.items()}
    ratio = {
        mode: statistics.median(s / v for s, v in zip(times["sequential"], t))
        for mode, t in times.items()
    }
    gap = max(abs(a - b) for mode in modes for a, b in zip(losses["sequential"], losses[mode]))
    print(
        f"{args.model} d_model={args.d_model}, {args.members} seeds x {args.steps} steps of "
        f"{args.batch_size}, torch threads={torch.get_num_threads()}, median of {args.rounds} "
        "interleaved rounds"
    )
    print(f"{'mode':<20}{'seconds':>10}{'ms/step/member':>17}{'speedup':>10}")
    for mode in modes:
        per = 1000 * median[mode] / args.steps / args.members
        print(f"{mode:<20}{median[mode]:>10.2f}{per:>17.2f}{ratio[mode]:>9.2f}x")
    print(f"final losses agree to {gap:.1e}")
    best = max(ratio[m] for m in modes if m != "sequential")
    print(
        json.dumps(
            {
                "sequential_s": round(median["sequential"], 3),
                "vmapped_s": round(median["vmapped"], 3),
                "vmapped_compiled_s": round(median["vmapped, compiled"], 3)
                if "vmapped, compiled" in median
                else None,
                "speedup_eager": round(ratio["vmapped"], 2),
                "speedup_compiled": round(ratio["vmapped, compiled"], 2)
                if "vmapped, compiled" in ratio
                else None,
                "speedup": round(best, 2),
                "members": args.members,
                "steps": args.steps,
                "model": args.model,
                "max_final_loss_gap": gap,
            }
        )
    )


if __name__ == "__main__":
    main()
