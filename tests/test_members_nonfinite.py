"""Ensemble and sweep members skip a non-finite update each on their own, as a run does.

A member whose update would make a parameter NaN or Inf keeps its parameters (finite); the
other members train on, each exactly as its run alone (``seqfunc train``'s guarded step)."""

import math

import torch

from seqfunc import optim
from seqfunc.members_step import init_members_state, make_members_step
from seqfunc.runs import TrainConfig, make_optimizer
from seqfunc.train import init_state, make_step
from seqfunc.tree import tree_leaves, tree_stack, tree_unstack

KEYS = torch.zeros(2, 2, dtype=torch.int64)
BATCH = {"target": torch.arange(4.0)}


def quadratic(params, batch, key):
    return ((params["w"] - batch["target"]) ** 2).sum() + (params["b"] ** 2).sum(), {}


def start(scale=1.0):
    return {"w": torch.linspace(-1.0, 2.0, 4) * scale, "b": torch.tensor([0.5, -0.25])}


def run_alone(cfg, params, steps, total_steps):
    """What ``seqfunc train`` does with ``params``: the guarded, flattened optimizer."""
    opt = make_optimizer(cfg, total_steps)
    state = init_state(params, opt)
    step = make_step(quadratic, opt)
    for _ in range(steps):
        state, _ = step(state, BATCH, torch.zeros(2, dtype=torch.int64))
    return state.params


def injected(opt_state) -> optim.InjectedState | None:
    """The sweep optimizer's state that holds its hyperparameters (wherever it sits)."""
    if isinstance(opt_state, optim.InjectedState):
        return opt_state
    for part in opt_state if isinstance(opt_state, tuple) else ():
        found = injected(part)
        if found is not None:
            return found
    return None


def assert_all_finite(tree):
    assert all(bool(torch.isfinite(leaf).all()) for leaf in tree_leaves(tree))


def test_a_sweep_member_with_an_infinite_rate_skips_while_the_other_trains_as_its_run():
    members = [
        TrainConfig(
            dataset="imdb-synth",
            model="baseline",
            optimizer="adamw",
            lr=0.05,
            warmup_steps=1,
            clip_norm=1.0,
            seed=s,
        )
        for s in (0, 1)
    ]
    opt = make_optimizer(members, 4, rows=True, in_state=["lr"])  # lr: a (2, 1) tensor
    first = tree_stack([start(), start(0.5)])
    state = init_members_state(first, opt)
    hyper = injected(state.opt_state).hyperparams
    hyper["lr"] = torch.tensor([[0.05], [math.inf]])  # member 1's rate: Inf
    step = make_members_step(quadratic, opt)
    for _ in range(3):
        state, metrics = step(state, BATCH, KEYS)
        assert bool(torch.isfinite(metrics["grad_norm"]).all())  # the gradients stay finite
    zero, one = tree_unstack(state.params)
    for got, want in zip(tree_leaves(one), tree_leaves(start(0.5))):
        assert torch.equal(got, want)  # member 1 never moved
    for got, want in zip(tree_leaves(zero), tree_leaves(run_alone(members[0], start(), 3, 4))):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    assert not torch.equal(zero["w"], start()["w"])
    assert optim.finite_guard_state(state.opt_state).skipped.tolist() == [0, 3]
    assert_all_finite(state.params)
    # and so is the optimizer state (Adam's moments), all but the hyperparameters' (2, 1)
    assert_all_finite([x for x in tree_leaves(state.opt_state) if tuple(x.shape) != (2, 1)])


def test_an_ensemble_member_whose_gradient_overflows_skips_while_the_other_trains_as_its_run():
    """The optimizer fit_ensemble builds (each member clipped by its own norm): member 1
    holds 3e38, its gradient 6e38 is Inf."""
    cfg = TrainConfig(
        dataset="imdb-synth",
        model="baseline",
        optimizer="adam",
        lr=0.05,
        warmup_steps=2,
        clip_norm=1.0,
    )
    opt = make_optimizer(cfg, 5, rows=True)
    huge = {"w": torch.tensor([3e38, 0.0, 1.0, 2.0]), "b": torch.zeros(2)}
    state = init_members_state(tree_stack([start(), huge]), opt)
    step = make_members_step(quadratic, opt)
    for _ in range(4):
        state, _ = step(state, BATCH, KEYS)
    zero, one = tree_unstack(state.params)
    for got, want in zip(tree_leaves(one), tree_leaves(huge)):
        assert torch.equal(got, want)
    for got, want in zip(tree_leaves(zero), tree_leaves(run_alone(cfg, start(), 4, 5))):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    assert optim.finite_guard_state(state.opt_state).skipped.tolist() == [0, 4]
    assert_all_finite(zero)


def test_rows_keep_their_own_step_counters():
    """Row 1's gradient is NaN at step 1 only: it skips that step, its Adam bias correction
    and schedule do not advance, and each row then equals the guarded run alone."""
    lr = optim.warmup_cosine(0.1, 2, 6)
    rows = optim.apply_if_finite(optim.adam(lr), rows=True)
    alone = optim.apply_if_finite(optim.adam(lr))
    params = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]])
    grads = [torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]) * (k + 1) for k in range(4)]
    grads[1][1, 0] = math.nan
    state = rows.init(params)
    singles = [(params[i], alone.init(params[i])) for i in range(2)]
    for g in grads:
        updates, state = rows.update(g, state, params)
        params = params + updates
        for i, (p, s) in enumerate(singles):
            u, s = alone.update(g[i], s, p)
            singles[i] = (p + u, s)
    for i, (p, s) in enumerate(singles):
        torch.testing.assert_close(params[i], p, atol=0, rtol=0)
        assert int(s.skipped) == state.skipped.tolist()[i]
    assert state.skipped.tolist() == [0, 1]


def test_a_sweep_members_train_records_count_its_skipped_updates():
    from seqfunc.runs.sweep import train_members

    members = [
        TrainConfig(
            dataset="imdb-synth",
            model="baseline",
            model_options={"d_model": 8},
            dataset_options={"train_size": 64, "val_size": 32},
            steps=2,
            batch_size=32,
            log_every=1,
            eval_every=2,
            lr=lr,
        )
        for lr in (1e-3, 1e-2)
    ]
    result = train_members(members)
    train = [[r for r in member if r["split"] == "train"] for member in result.records]
    assert all(
        len(member) == 2 and all(r["nonfinite_skipped"] == 0 for r in member) for member in train
    )
