"""8 seeds of one classifier: one vmapped ensemble step vs 8 runs one after another.

Same model, same data (IMDb-synth batches), same optimizer and step count; CPU.
Only the training steps are timed (batches are built beforehand).

    flock -x /tmp/seqfunc-cpu.lock python benchmarks/ensemble.py [--members 8] [--steps 100]

Last line: one JSON object {"sequential_s", "vmapped_s", "speedup", ...}.
"""

from __future__ import annotations

import argparse
import json
import time

import attrs
import torch

from seqfunc import rng
from seqfunc.ensemble import make_ensemble_step, member_keys, step_keys
from seqfunc.fit import TrainConfig, build, make_optimizer
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
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared 2-core CPU two threads per tiny op "
                        "can be 20x slower; 0 = torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    options = {"d_model": args.d_model, "heads": 4}
    if args.model == "transformer-classifier":
        options["blocks"] = args.blocks
    cfg = TrainConfig(dataset="imdb-synth", model=args.model, model_options=options,
                      dataset_options={"train_size": args.batch_size * args.steps, "val_size": 100},
                      steps=args.steps, batch_size=args.batch_size, lr=3e-3, clip_norm=1.0)
    dataset, model, task = build(cfg)
    batches = list(dataset.batches("train", cfg.batch_size))[: args.steps]
    seeds = list(range(args.members))
    loss_fn = task.loss_fn(model)

    # -- sequential: the stepper fit uses, once per seed --------------------------------------
    optimizer = make_optimizer(cfg, args.steps)
    step = make_step(loss_fn, optimizer)
    step(init_state(model.init(rng.key(0)), optimizer), batches[0], rng.key(0))  # warm-up
    start = time.perf_counter()
    sequential_loss = []
    for seed in seeds:
        k_init, k_train = rng.split(rng.key(seed))
        state = init_state(model.init(k_init), optimizer)
        for i, batch in enumerate(batches):
            state, metrics = step(state, batch, rng.fold_in(k_train, i))
        sequential_loss.append(float(metrics["loss"]))
    sequential_s = time.perf_counter() - start

    # -- vmapped: every seed in one step ------------------------------------------------------
    base = make_optimizer(attrs.evolve(cfg, clip_norm=None), args.steps)
    ens_step = make_ensemble_step(loss_fn, base, clip_norm=cfg.clip_norm)
    init_keys, train_keys = member_keys(seeds)
    warm = init_state(tree_stack([model.init(k) for k in init_keys]), base)
    ens_step(warm, batches[0], step_keys(train_keys, 0))  # warm-up
    start = time.perf_counter()
    state = init_state(tree_stack([model.init(k) for k in init_keys]), base)
    for i, batch in enumerate(batches):
        state, metrics = ens_step(state, batch, step_keys(train_keys, i))
    vmapped_loss = metrics["loss"].tolist()
    vmapped_s = time.perf_counter() - start

    speedup = sequential_s / vmapped_s
    gap = max(abs(a - b) for a, b in zip(sequential_loss, vmapped_loss))
    print(f"{args.model} d_model={args.d_model}, {args.members} seeds x {args.steps} steps of "
          f"{args.batch_size}, torch threads={torch.get_num_threads()}")
    print(f"{'mode':<12}{'seconds':>10}{'ms/step/member':>17}")
    print(f"{'sequential':<12}{sequential_s:>10.2f}{1000 * sequential_s / args.steps / args.members:>17.2f}")
    print(f"{'vmapped':<12}{vmapped_s:>10.2f}{1000 * vmapped_s / args.steps / args.members:>17.2f}")
    print(f"speedup {speedup:.2f}x; final losses agree to {gap:.1e}")
    print(json.dumps({"sequential_s": round(sequential_s, 3), "vmapped_s": round(vmapped_s, 3),
                      "speedup": round(speedup, 2), "members": args.members, "steps": args.steps,
                      "model": args.model, "max_final_loss_gap": gap}))


if __name__ == "__main__":
    main()
