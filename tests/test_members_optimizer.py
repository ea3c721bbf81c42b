"""One config-to-optimizer mapping: the optimizer of members trained in one vmapped step
updates each member's row as the optimizer of its run alone updates its vector, up to float
rounding (a hyperparameter the members differ in is a float32 tensor in the state, a run's a
Python float), to the tolerance of tests/test_ensemble.py."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import optim
from seqfunc.runs import TrainConfig, make_optimizer

N = 6


def member(optimizer: str, schedule: str, values: dict, seed: int) -> TrainConfig:
    return TrainConfig(
        dataset="xor",
        model="baseline",
        optimizer=optimizer,
        schedule=schedule,
        warmup_steps=2,
        seed=seed,
        **values,
    )


per_member = st.fixed_dictionaries(
    {
        "lr": st.sampled_from([1e-3, 1e-2, 0.1]),
        "b1": st.sampled_from([0.8, 0.9]),
        "b2": st.sampled_from([0.99, 0.999]),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "momentum": st.sampled_from([0.0, 0.9]),
        "clip_norm": st.sampled_from([0.5, 5.0]),
    }
)


@settings(max_examples=25, deadline=None)
@given(
    optimizer=st.sampled_from(["adam", "adamw", "sgd"]),
    schedule=st.sampled_from(["warmup_cosine", "constant", "step"]),
    values=st.lists(per_member, min_size=2, max_size=3),
    data=st.data(),
)
def test_rows_update_as_each_members_run_alone(optimizer, schedule, values, data):
    members = [member(optimizer, schedule, v, seed) for seed, v in enumerate(values)]
    rows = make_optimizer(members, 5, rows=True).flat_inner
    alone = [make_optimizer(m, 5).flat_inner for m in members]
    params = torch.randn(len(members), N)
    state, states = rows.init(params), [a.init(params[i]) for i, a in enumerate(alone)]
    singles = [params[i].clone() for i in range(len(members))]
    for _ in range(4):
        grads = torch.randn(len(members), N) * data.draw(st.sampled_from([0.1, 10.0]))
        updates, state = rows.update(grads, state, params)
        params = params + updates
        for i, one in enumerate(alone):
            update, states[i] = one.update(grads[i], states[i], singles[i])
            singles[i] = singles[i] + update
    for i, single in enumerate(singles):
        torch.testing.assert_close(params[i], single, atol=2e-5, rtol=1e-4)


def test_shared_hyperparameters_stay_floats_and_one_config_is_the_runs_optimizer():
    """Members that differ only in the seed hold no hyperparameter in the state; a member
    alone gets the very transformation a run gets (the same state layout)."""
    cfg = member("adamw", "warmup_cosine", {"lr": 1e-2}, 0)
    seeds = make_optimizer([cfg, member("adamw", "warmup_cosine", {"lr": 1e-2}, 1)], 5, rows=True)
    assert "InjectedState" not in repr(seeds.init({"w": torch.zeros(2, 3)}))
    lrs = make_optimizer([cfg, member("adamw", "warmup_cosine", {"lr": 0.1}, 1)], 5, rows=True)
    injected = lrs.init({"w": torch.zeros(2, 3)}).inner
    assert isinstance(injected, optim.InjectedState)
    assert list(injected.hyperparams) == ["lr"] and injected.hyperparams["lr"].shape == (2, 1)
    vector = torch.arange(4.0)
    shapes = lambda state: [tuple(x.shape) for x in torch.utils._pytree.tree_leaves(state)]
    assert shapes(make_optimizer([cfg], 5).flat_inner.init(vector)) == shapes(
        make_optimizer(cfg, 5).flat_inner.init(vector)
    )
