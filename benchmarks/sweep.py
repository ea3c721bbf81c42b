"""A sweep of 12 members (4 learning rates x 3 seeds): one vmapped step vs one member after another.

Two tasks, each with its dataset's default recipe (``seqfunc train DATASET``): the formula
Transformer (``formula``, d_model 64, 2 + 2 pre-norm layers, Adam, batch 128) and the
IMDb-synth attention classifier (``imdb-synth``, ``simple-attention``, batch 32). The
vmapped side is the step ``seqfunc sweep`` takes (:func:`seqfunc.runs.optimizer.make_optimizer`
with ``rows=True``, :func:`seqfunc.members_step.make_members_step`); the sequential side is
``seqfunc train``'s step
(:func:`seqfunc.train.make_step`) once per member, each member a block of steps from its own
state. Both sides run compiled (``--modes compiled,eager`` adds both eager): compiling pays
for a single run too (``benchmarks/formula_throughput.py``), so compiled against compiled is
the like-for-like ratio (``benchmarks/ensemble.py`` set the compiled vmapped step against
eager single runs). The sequential members share one step function whose hyperparameters are
0-d tensors in the optimizer state (``make_optimizer(cfg, steps, in_state=PER_MEMBER)``): one
compiled graph serves every learning rate, as a float rate baked into each member's graph
would compile 4 times; the arithmetic is that of ``seqfunc train``'s optimizer. Clipping is
``clip_by_global_norm`` on each side, by rows in the vmapped step.

Both sides get the same batches, built beforehand: the formula recipe trims padding
(``trim_padding``), so its batches are trimmed once, before timing, and neither step trims;
the timed batches are the run's first ``--batches`` of the most common shape (formula: 9
source positions), so each side compiles once (compile time is not timed). Only training
steps are timed; each round runs ``--steps`` steps of every contender in turn (the
sequential one: ``--steps`` steps of each of the 12 members), and a contender's figure is
its median round (``benchmarks/timing.py``'s reasoning). Per-step times are the time to
advance all 12 members by one step.

    python benchmarks/sweep.py [--rounds 5] [--steps 3] [--only formula] [--modes compiled,eager]

Last line: one JSON object {"speedup_formula", "speedup_classifier", "speedup" (the smaller),
per-step times in ms, ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from seqfunc import optim, registry, rng
from seqfunc.members_step import init_members_state, make_members_step, member_keys, step_keys
from seqfunc.runs import TrainConfig, build
from seqfunc.runs.optimizer import PER_MEMBER, make_optimizer
from seqfunc.runs.sweep import grid_members
from seqfunc.train import init_state, make_step
from seqfunc.tree import tree_stack

TASKS = {  # name: (dataset, model or None for the recipe's, learning rates)
    "formula": ("formula", None, [1e-3, 2e-3, 3e-3, 5e-3]),
    "classifier": ("imdb-synth", None, [1e-3, 3e-3, 1e-2, 3e-2]),
}
SEEDS = [0, 1, 2]


def recipe_config(dataset: str, model: str | None, steps: int) -> TrainConfig:
    """``seqfunc train DATASET``'s config (the dataset's ``train_defaults``), ``steps`` long."""
    fields = dict(registry.get_dataset(dataset).train_defaults)
    if model is not None:
        fields["model"], fields["model_options"] = model, {}
    fields.pop("epochs", None)
    return TrainConfig(dataset=dataset, **{**fields, "steps": steps})


def single_optimizer(cfg: TrainConfig, steps: int) -> optim.GradientTransformation:
    """``seqfunc train``'s optimizer for ``cfg``, its hyperparameters 0-d tensors in the
    state."""
    return make_optimizer(cfg, steps, in_state=PER_MEMBER)


def contenders(
    cfg: TrainConfig,
    lrs: list[float],
    batches: list[dict],
    schedule_steps: int,
    modes=(False, True),
):
    """``{name: run(first, count)}``: each runs steps ``first .. first+count-1`` for all 12
    members and returns a loss tensor to wait on. Compiles every batch shape first."""
    dataset, model, task = build(cfg)
    loss_fn = task.loss_fn(model)
    members = grid_members(cfg, {"lr": lrs}, SEEDS)
    init_keys, train_keys = member_keys([m.seed for m in members])
    shapes = list({tuple(v.shape for v in b.values()): b for b in batches}.values())
    out, start = {}, time.perf_counter()

    for compiled in modes:
        # one after another: one step function, each member its own state (and optimizer state)
        opts = [single_optimizer(m, schedule_steps) for m in members]
        step = make_step(loss_fn, opts[0], compile=compiled)
        for batch in shapes:  # warm-up: every shape (hyperparameters are state: one graph)
            step(init_state(model.init(init_keys[0]), opts[0]), batch, train_keys[0])
        states = [init_state(model.init(k), o) for k, o in zip(init_keys, opts)]

        def sequential(first, count, step=step, states=states):
            for m in range(len(members)):
                state = states[m]
                for i in range(first, first + count):
                    state, metrics = step(
                        state, batches[i % len(batches)], rng.fold_in(train_keys[m], i)
                    )
                states[m] = state
            return metrics["loss"]

        # the sweep's step: every member in one vmapped step
        vopt = make_optimizer(members, schedule_steps, rows=True)
        vstep = make_members_step(loss_fn, vopt, compile=compiled)
        fresh = lambda vopt=vopt: init_members_state(
            tree_stack([model.init(k) for k in init_keys]), vopt
        )
        for batch in shapes:
            vstep(fresh(), batch, step_keys(train_keys, 0))
        vstate = [fresh()]
        print(
            f"  {cfg.dataset}: {'compiled' if compiled else 'eager'} steps ready "
            f"({time.perf_counter() - start:.0f}s)",
            file=sys.stderr,
            flush=True,
        )

        def vmapped(first, count, vstep=vstep, vstate=vstate):
            state = vstate[0]
            for i in range(first, first + count):
                state, metrics = vstep(state, batches[i % len(batches)], step_keys(train_keys, i))
            vstate[0] = state
            return metrics["loss"]

        suffix = "compiled" if compiled else "eager"
        out[f"sequential {suffix}"] = sequential
        out[f"vmapped {suffix}"] = vmapped
    return out, len(shapes)


def measure(name: str, args) -> dict:
    dataset, model, lrs = TASKS[name]
    cfg = recipe_config(dataset, model, steps=1000)
    data, _, task = build(cfg)
    batches = []
    for batch in data.batches("train", cfg.batch_size):  # the run's first batches
        batches.append(task.trim_padding(batch) if cfg.trim_padding else batch)
        if len(batches) == 4 * args.batches:
            break
    # the batches of the most common shape (trimmed formula batches come in two widths, 9 and
    # 10 source positions, ~85 % of them 9): one compile per side instead of two
    shape = lambda b: tuple(v.shape for v in b.values())
    common = statistics.mode(shape(b) for b in batches)
    batches = [b for b in batches if shape(b) == common][: args.batches]
    start = time.perf_counter()
    modes = [m == "compiled" for m in args.modes.split(",")]
    runs, shapes = contenders(cfg, lrs, batches, schedule_steps=1000, modes=modes)
    warm_s = time.perf_counter() - start
    per_round = {k: [] for k in runs}
    first = 0
    for _ in range(args.rounds):
        for k, run in runs.items():
            t = time.perf_counter()
            float(run(first, args.steps).sum())
            per_round[k].append((time.perf_counter() - t) / args.steps)
        first += args.steps
    ms = {k: 1000 * statistics.median(v) for k, v in per_round.items()}
    ratio = {
        mode: statistics.median(
            s / v for s, v in zip(per_round[f"sequential {mode}"], per_round[f"vmapped {mode}"])
        )
        for mode in args.modes.split(",")
    }
    print(
        f"\n{name}: {dataset}, model {cfg.model} {cfg.model_options or ''}, batch "
        f"{cfg.batch_size}{', trimmed' if cfg.trim_padding else ''}; {len(lrs)} lr x "
        f"{len(SEEDS)} seeds = {len(lrs) * len(SEEDS)} members; {shapes} batch shape(s), "
        f"compiled in {warm_s:.0f}s (untimed)"
    )
    print(f"{'contender':<22}{'ms/step (12 members)':>22}{'ms/member-step':>16}")
    for k, v in ms.items():
        print(f"{k:<22}{v:>22.1f}{v / 12:>16.2f}")
    print(
        "speedup, vmapped vs one after another: "
        + ", ".join(f"{m} {r:.2f}x" for m, r in ratio.items())
        + " (median of per-round ratios)"
    )
    return {"ms": ms, "ratio": ratio, "model": cfg.model}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3, help="steps per contender per round")
    p.add_argument("--batches", type=int, default=20, help="distinct batches, cycled")
    p.add_argument("--only", choices=sorted(TASKS), default=None)
    p.add_argument(
        "--modes",
        default="compiled",
        help="compiled (default), eager, or compiled,eager; the speedup is the "
        "compiled one (eager adds minutes: the formula model's vmapped eager "
        "attention runs member by member)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1, as benchmarks/ensemble.py: on a shared 2-core "
        "CPU two threads per small op can be far slower; 0 = torch's default)",
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch threads={torch.get_num_threads()}, median of {args.rounds} interleaved rounds "
        f"of {args.steps} steps"
    )
    results = {name: measure(name, args) for name in TASKS if args.only in (None, name)}
    line = {}
    for name, r in results.items():
        line[f"speedup_{name}"] = round(r["ratio"].get("compiled", float("nan")), 2)
        if "eager" in r["ratio"]:
            line[f"speedup_{name}_eager"] = round(r["ratio"]["eager"], 2)
        for k, v in r["ms"].items():
            line[f"{name}_{k.replace(' ', '_')}_ms"] = round(v, 2)
    line["speedup"] = min(line[f"speedup_{n}"] for n in results)
    line.update(
        members=12,
        rounds=args.rounds,
        steps=args.steps,
        threads=torch.get_num_threads(),
        compiled_both_sides=True,
    )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
