"""Gradient accumulation: K micro-batches of a batch make the step the whole batch makes.

Each micro-batch is weighted by its share of the batch's real targets (as a data-parallel
shard is), so padding and ignored targets count over the whole batch; dropout draws the
whole batch's masks for each micro-batch's rows. Equal to float rounding (the sums add in
another order): losses to rtol 1e-5, the parameters after a few steps to 1e-5, except the
attention key projection's bias, whose exact gradient is zero (softmax is shift-invariant):
Adam normalises its rounding noise into steps of up to lr, so it is held to lr x steps (as
in tests/test_data_parallel.py).
"""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data_parallel import COMMON, KINDS, key_bias_slice, params, standalone, train_losses

from seqfunc import cli, optim, rng
from seqfunc.data.formula import FormulaConfig, FormulaDataset
from seqfunc.models import Seq2SeqTransformer
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.runs.distributed import micro_batches, sharded_loss
from seqfunc.tasks import task_for
from seqfunc.tasks.language_model import LanguageModelTask
from seqfunc.train import init_state, make_step
from seqfunc.tree import flatten_dict

ROWS = 8
LR = 3e-3


def optimizer():
    return optim.flatten(optim.chain(optim.clip_by_global_norm(1.0), optim.adam(LR)))


@functools.cache
def formula_case():
    """A seq2seq model with dropout and padded batches whose rows hold different numbers of
    real targets (the formula answers differ in length)."""
    dataset = FormulaDataset(FormulaConfig(complexity=2, epoch_size=64, val_size=8))
    model = Seq2SeqTransformer(
        Seq2SeqTransformer.config_for(
            dataset, d_model=16, heads=2, encoder_layers=1, decoder_layers=1, d_ff=32, dropout=0.2
        )
    )
    task = task_for(dataset)
    return model, task, list(dataset.batches("train", ROWS))[:3]


def gpt_case():
    model = GPT(GPTConfig(vocab_size=13, context=12, d_model=16, heads=2, layers=2, dropout=0.2))
    tokens = rng.random_bits(rng.key(5), (3, ROWS, 13)) % 13
    batches = [{"inputs": t[:, :-1], "targets": t[:, 1:]} for t in tokens.long()]
    return model, LanguageModelTask(), batches


CASES = {"seq2seq": formula_case, "language_model": gpt_case}


def run(model, task, batches, parts: int, *, compile=False):
    """Parameters and losses after one step per batch, each batch cut into ``parts``."""
    opt = optimizer()
    loss_fn = task.loss_fn(model)
    step = make_step(sharded_loss(loss_fn) if parts > 1 else loss_fn, opt, compile=compile)
    state = init_state(model.init(rng.key(0)), opt)
    losses = []
    for i, batch in enumerate(batches):
        given = micro_batches(batch, parts, task.target_count) if parts > 1 else batch
        state, metrics = step(state, given, rng.fold_in(rng.key(1), i))
        losses.append(float(metrics["loss"]))
    return state, losses


def assert_same_params(got: dict, expected: dict, steps: int, lr: float = LR):
    for name, value in got.items():
        want = expected[name]
        keys = key_bias_slice(name, value)
        if keys is not None:
            assert (value[keys] - want[keys]).abs().max() <= lr * steps, name
            value, want = value.clone(), want.clone()
            value[keys] = want[keys] = 0
        torch.testing.assert_close(value, want, rtol=0, atol=1e-5, msg=name)


def assert_same(a, b):
    (state_a, losses_a), (state_b, losses_b) = a, b
    torch.testing.assert_close(losses_a, losses_b, rtol=1e-5, atol=0)
    assert_same_params(
        flatten_dict(state_a.params), flatten_dict(state_b.params), steps=len(losses_a)
    )


@pytest.mark.parametrize("kind", sorted(CASES))
def test_four_micro_batches_make_the_step_of_the_whole_batch(kind):
    model, task, batches = CASES[kind]()
    assert_same(run(model, task, batches, 4), run(model, task, batches, 1))


@settings(max_examples=4, deadline=None)
@given(parts=st.integers(2, ROWS))
def test_any_cut_of_a_padded_batch_makes_its_step(parts):
    """Micro-batches of unequal sizes too (8 rows in 3: 3, 3, 2): the weights carry them."""
    model, task, batches = formula_case()
    batches = batches[:1]
    assert_same(run(model, task, batches, parts), run(model, task, batches, 1))


def test_micro_batch_weights_are_shares_of_the_real_targets():
    _, task, batches = formula_case()
    parts = micro_batches(batches[0], 3, task.target_count)
    weights = [float(p["loss_weight"]) for p in parts]
    real = [task.target_count(p) for p in parts]
    assert sum(weights) == pytest.approx(1.0)
    assert weights == pytest.approx([r / sum(real) for r in real])
    assert [p["src"].shape[0] for p in parts] == [3, 3, 2]


def test_micro_batches_of_a_shard_weigh_their_share_of_the_global_batch():
    """A rank's shard cut again: the weights multiply (one mechanism, nested)."""
    _, task, batches = formula_case()
    shard = micro_batches(batches[0], 2, task.target_count)[1]
    parts = micro_batches(shard, 2, task.target_count)
    assert sum(float(p["loss_weight"]) for p in parts) == pytest.approx(float(shard["loss_weight"]))


@pytest.mark.slow
def test_compiled_accumulation_makes_the_eager_step():
    model, task, batches = gpt_case()
    assert_same(run(model, task, batches[:2], 4, compile=True), run(model, task, batches[:2], 1))


def test_more_micro_batches_than_rows_is_one_line():
    _, task, batches = formula_case()
    with pytest.raises(Exception, match="accumulate=9: a batch of 8 rows cannot be cut"):
        micro_batches(batches[0], 9, task.target_count)


def test_cli_run_with_accumulation_trains_as_without(tmp_path):
    argv = [
        "train",
        "formula",
        "--steps",
        "3",
        "--batch-size",
        "16",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--layers",
        "1",
        "--d-ff",
        "32",
        "--dropout",
        "0.1",
        "-d",
        "val_size=32",
        "-d",
        "epoch_size=64",
        "--eval-batches",
        "1",
        "--examples",
        "0",
        "-t",
        "trim_padding=true",
        "-t",
        "log_every=1",
        "--no-progress",
    ]
    assert cli.main([*argv, "--out", str(tmp_path / "one")]) == 0
    assert cli.main([*argv, "-t", "accumulate=4", "--out", str(tmp_path / "four")]) == 0
    torch.testing.assert_close(
        train_losses(tmp_path / "four"), train_losses(tmp_path / "one"), rtol=1e-5, atol=0
    )
    assert_same_params(params(tmp_path / "four"), params(tmp_path / "one"), steps=3, lr=1e-3)


@pytest.mark.slow
def test_two_gloo_ranks_accumulating_make_the_steps_of_one_process(tmp_path):
    """2 ranks x 2 micro-batches of the padded formula batches, dropout on, against one
    process with whole batches: one all-reduce a step of the accumulated gradient."""
    argv = [*KINDS["seq2seq"], *COMMON]
    assert cli.main([*argv, "--out", str(tmp_path / "one")]) == 0
    code, _, err = standalone(2, [*argv, "-t", "accumulate=2", "--out", str(tmp_path / "two")])
    assert code == 0, err[-3000:]
    one, two = tmp_path / "one", tmp_path / "two"
    assert len(train_losses(two)) == 5
    torch.testing.assert_close(train_losses(two), train_losses(one), rtol=1e-5, atol=0)
    assert_same_params(params(two), params(one), steps=5, lr=1e-3)


def test_cli_refuses_more_micro_batches_than_rows_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "toy_grammar", "--steps", "2", "--batch-size", "8", "-t", "accumulate=16"]
    assert cli.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        "accumulate=16: a batch of 8 rows cannot be cut into 16 micro-batches; "
        "raise batch_size or lower accumulate"
    )
    assert not out.exists()
