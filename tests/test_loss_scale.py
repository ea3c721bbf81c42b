"""The fp16 loss scale, an optimizer transform: an overflow skips the update and halves the
scale, ``growth_interval`` finite steps double it; it compiles, vmaps, and a run with it
resumes bit for bit."""

from __future__ import annotations

import json

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import optim
from seqfunc.loss_scale import LossScaleState, current_scale, dynamic_loss_scale
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.optimizer import make_optimizer
from seqfunc.tree import tree_leaves

PARAMS = torch.tensor([1.0, -2.0, 3.0])


def scaler(growth_interval=3, initial_scale=1024.0):
    inner = optim.apply_if_finite(optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.1)))
    return dynamic_loss_scale(inner, initial_scale=initial_scale, growth_interval=growth_interval)


def test_an_overflow_skips_the_update_and_halves_the_scale():
    opt = scaler()
    state = opt.init(PARAMS)
    overflow = torch.tensor([1.0, float("inf"), 0.0])  # the scaled gradient overflowed
    updates, new = opt.update(overflow, state, PARAMS)
    assert torch.equal(updates, torch.zeros(3))
    assert float(new.scale) == 512.0 and int(new.overflows) == 1 and int(new.good_steps) == 0
    for before, after in zip(tree_leaves(state.inner.inner), tree_leaves(new.inner.inner)):
        assert torch.equal(before, after)  # Adam's moments and step counter as they were
    assert int(optim.finite_guard_state(new).streak) == 0  # the overflow is the scaler's


def test_the_scale_grows_after_growth_interval_finite_steps():
    opt, scales = scaler(growth_interval=3), []
    state = opt.init(PARAMS)
    for _ in range(7):
        _, state = opt.update(torch.tensor([0.5, 1.0, -1.0]) * state.scale, state, PARAMS)
        scales.append(float(state.scale))
    assert scales == [1024.0, 1024.0, 2048.0, 2048.0, 2048.0, 4096.0, 4096.0]


@settings(max_examples=20, deadline=None)
@given(scale_power=st.integers(0, 20), grads=st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3))
def test_finite_steps_update_as_the_unscaled_optimizer_does(scale_power, grads):
    """Scaling by a power of two and unscaling is exact: the inner transform sees the very
    gradient an unscaled step computes."""
    grads = torch.tensor(grads)
    plain = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.1))
    expected, _ = plain.update(grads, plain.init(PARAMS), PARAMS)
    opt = dynamic_loss_scale(plain, initial_scale=2.0**scale_power)
    got, _ = opt.update(grads * 2.0**scale_power, opt.init(PARAMS), PARAMS)
    assert torch.equal(got, expected)


def test_the_scaler_compiles_and_vmaps():
    opt = scaler()
    state = opt.init(PARAMS)
    grads = torch.tensor([[1.0, 2.0, 3.0], [1.0, float("nan"), 3.0]])
    eager = [opt.update(g, state, PARAMS) for g in grads]
    compiled = torch.compile(opt.update, fullgraph=True)(grads[1], state, PARAMS)
    assert float(compiled[1].scale) == float(eager[1][1].scale) == 512.0
    members = dynamic_loss_scale(optim.adam(0.1), initial_scale=1024.0)
    member_state = members.init(PARAMS)
    batched = torch.vmap(lambda g: members.update(g, member_state, PARAMS))(grads)
    assert torch.equal(batched[1].scale, torch.tensor([1024.0, 512.0]))
    assert torch.equal(batched[0][1], torch.zeros(3))  # the overflowing member: no update
    alone = members.update(grads[0], member_state, PARAMS)[0]
    torch.testing.assert_close(batched[0][0], alone)


def test_fp16_runs_get_a_loss_scale_outside_the_finite_guard():
    opt = make_optimizer(TrainConfig(precision="fp16", steps=10), 10)
    state = opt.init({"w": PARAMS})
    assert isinstance(state, LossScaleState) and current_scale(state) is not None
    assert optim.finite_guard_state(state) is not None
    for precision in ("fp32", "bf16"):
        opt = make_optimizer(TrainConfig(precision=precision, steps=10), 10)
        assert current_scale(opt.init({"w": PARAMS})) is None


RUN = [
    "train",
    "toy_grammar",
    "--steps",
    "12",
    "--batch-size",
    "8",
    "--d-model",
    "16",
    "--heads",
    "2",
    "--layers",
    "1",
    "--dropout",
    "0.1",
    "--eval-every",
    "6",
    "--checkpoint-every",
    "3",
    "--eval-batches",
    "1",
    "--examples",
    "0",
    "-t",
    "log_every=2",
    "-t",
    "precision=fp16",
    "-t",
    "accumulate=2",
    "-m",
    "remat=true",
    "--no-progress",
]


def test_fp16_run_with_accumulation_and_remat_killed_and_resumed_is_bit_identical(tmp_path):
    """The scale, its counters and the inner state are in the checkpoint's optimizer state."""
    from test_resume import assert_same_run, drive, reference, resume

    ref = reference(RUN, tmp_path / "ref")
    records = [r for r in map(json.loads, (ref / "metrics.jsonl").read_text().splitlines())]
    assert all("loss_scale" in r for r in records if r["split"] == "train")
    run = tmp_path / "run"
    killed = drive("kill", 5, [*RUN, "--out", str(run)])
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = resume(run)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_run(run, ref)
