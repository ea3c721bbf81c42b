"""Members of an ensemble or a sweep train in one precision and accumulation, as runs do.

The vmapped step takes ``precision``, the rows' loss scale (each member its own scale and
overflow decision) and a batch given as micro-batches; an ensemble in fp16 with accumulation,
killed with SIGKILL and resumed, ends bit for bit as its uninterrupted run.
"""

from __future__ import annotations

import json
import signal

import pytest
import torch
from test_accumulation import CASES, LR
from test_loop import FLAGS, member_folders, run_ensemble, same_bytes
from test_resume import drive

from seqfunc import optim, rng
from seqfunc.loss_scale import dynamic_loss_scale
from seqfunc.members_step import init_members_state, make_members_step, member_keys, step_keys
from seqfunc.runs import files
from seqfunc.runs.distributed import micro_batches, sharded_loss
from seqfunc.train import init_state, make_step
from seqfunc.tree import tree_leaves, tree_stack


def rows_scaler(initial_scale=1024.0):
    inner = optim.apply_if_finite(optim.adam(0.1), rows=True)
    return dynamic_loss_scale(inner, initial_scale=initial_scale, rows=True)


def test_an_overflow_in_one_member_skips_and_halves_that_member_only():
    params = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.5, 0.5]])
    opt = rows_scaler()
    state = opt.init(params)
    assert state.scale.shape == (2, 1)
    grads = torch.tensor([[512.0, -1024.0, 256.0], [1.0, float("inf"), 0.0]])
    updates, new = opt.update(grads, state, params)
    assert torch.equal(updates[1], torch.zeros(3))
    assert new.scale.flatten().tolist() == [1024.0, 512.0]
    assert new.overflows.flatten().tolist() == [0, 1]
    assert new.good_steps.flatten().tolist() == [1, 0]
    # member 0 steps as a run alone with its scaler does
    alone = dynamic_loss_scale(optim.apply_if_finite(optim.adam(0.1)), initial_scale=1024.0)
    expected, _ = alone.update(grads[0], alone.init(params[0]), params[0])
    assert torch.equal(updates[0], expected)


def members_run(model, task, batches, parts: int, precision: str, seeds=(0, 1)):
    """Stacked parameters and ``(members,)`` losses after one vmapped step per batch."""
    opt = optimizer_rows(precision)
    loss_fn = task.loss_fn(model)
    step = make_members_step(
        sharded_loss(loss_fn) if parts > 1 else loss_fn, opt, precision=precision
    )
    init_keys, train_keys = member_keys(seeds)
    state = init_members_state(tree_stack([model.init(k) for k in init_keys]), opt)
    losses = []
    for i, batch in enumerate(batches):
        given = micro_batches(batch, parts, task.target_count) if parts > 1 else batch
        state, metrics = step(state, given, step_keys(train_keys, i))
        losses.append(metrics["loss"])
        assert ("loss_scale" in metrics) == (precision == "fp16")
    return state, torch.stack(losses)


def optimizer_rows(precision: str):
    inner = optim.apply_if_finite(
        optim.chain(optim.clip_by_global_norm(1.0, rows=True), optim.adam(LR)), rows=True
    )
    if precision == "fp16":
        inner = dynamic_loss_scale(inner, rows=True)
    return optim.flatten(inner)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_members_accumulating_four_micro_batches_make_the_step_of_the_whole_batch(kind):
    """Padding and dropout included (the seq2seq case's rows differ in their real targets)."""
    model, task, batches = CASES[kind]()
    whole, whole_losses = members_run(model, task, batches, 1, "fp32")
    parts, part_losses = members_run(model, task, batches, 4, "fp32")
    torch.testing.assert_close(part_losses, whole_losses, rtol=1e-5, atol=1e-6)
    for got, want in zip(tree_leaves(parts.params), tree_leaves(whole.params)):
        # Adam turns rounding noise in a zero gradient into steps of up to lr (see
        # test_accumulation): the parameters agree to lr x steps, most far closer
        assert (got - want).abs().max() <= LR * len(batches) + 1e-6
    assert any(not torch.equal(p[0], p[1]) for p in tree_leaves(parts.params))  # two members


def single_run(model, task, batches, precision: str, seed: int):
    opt = optim.flatten(optim.chain(optim.clip_by_global_norm(1.0), optim.adam(LR)))
    if precision == "fp16":
        opt = optim.flatten(
            dynamic_loss_scale(optim.chain(optim.clip_by_global_norm(1.0), optim.adam(LR)))
        )
    step = make_step(task.loss_fn(model), opt, precision=precision)
    k_init, k_train = rng.split(rng.key(seed))
    state = init_state(model.init(k_init), opt)
    losses = []
    for i, batch in enumerate(batches):
        state, metrics = step(state, batch, rng.fold_in(k_train, i))
        losses.append(float(metrics["loss"]))
    return losses


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_each_member_in_a_lower_precision_trains_as_its_run(precision):
    """Member ``i`` (seed ``i``) in ``precision`` has the losses of ``seqfunc train --seed i``
    in ``precision``, to that precision's rounding (the vmapped kernels sum in another order);
    fp32 members' losses are further off, so the precision is applied."""
    model, task, batches = CASES["language_model"]()
    _, losses = members_run(model, task, batches, 1, precision)
    _, fp32 = members_run(model, task, batches, 1, "fp32")
    assert torch.isfinite(losses).all()
    for member, seed in enumerate((0, 1)):
        alone = torch.tensor(single_run(model, task, batches, precision, seed))
        torch.testing.assert_close(losses[:, member], alone, rtol=2e-3, atol=2e-3)
    assert not torch.equal(losses, fp32)


FP16_FLAGS = [*FLAGS, "-t", "precision=fp16", "-t", "accumulate=2"]


def test_an_ensemble_in_fp16_with_accumulation_killed_and_resumed_ends_bit_for_bit(tmp_path):
    ref = tmp_path / "ref"
    run_ensemble(["ensemble", str(ref), "0,1", *FP16_FLAGS])
    out = tmp_path / "killed"
    start = ["ensemble", str(out), "0,1", *FP16_FLAGS]
    killed = drive("kill", 8, start)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    done = drive("none", 0, start)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout + done.stderr
    for got, want in zip(member_folders(out), member_folders(ref), strict=True):
        assert same_bytes(got, want), f"{got.name} differs from the uninterrupted member"
        records = [json.loads(x) for x in (want / files.METRICS).read_text().splitlines()]
        assert all("loss_scale" in r for r in records if r["split"] == "train")
