"""The generic stepper: eager equals compiled, and a seed gives a bit-identical run."""

import json

import pytest
import torch

from seqfunc import optim, rng
from seqfunc.config import ConfigError
from seqfunc.data.formula import FormulaConfig, FormulaDataset
from seqfunc.models import Seq2SeqTransformer
from seqfunc.runs import TrainConfig, fit
from seqfunc.tasks import task_for
from seqfunc.testing.invariants import no_graph_breaks
from seqfunc.train import init_state, make_step
from seqfunc.tree import tree_leaves

#: Tolerance between eager and compiled losses: inductor may fuse and reorder float32 sums.
COMPILE_RTOL, COMPILE_ATOL = 1e-4, 1e-5


def _setup(dropout=0.1):
    dataset = FormulaDataset(FormulaConfig(complexity=2, epoch_size=256, val_size=64))
    model = Seq2SeqTransformer(
        Seq2SeqTransformer.config_for(
            dataset,
            d_model=16,
            heads=2,
            encoder_layers=1,
            decoder_layers=1,
            d_ff=32,
            dropout=dropout,
        )
    )
    optimizer = optim.chain(
        optim.clip_by_global_norm(1.0), optim.adam(optim.warmup_cosine(3e-3, 2, 20))
    )
    batches = list(dataset.batches("train", 32))
    return dataset, model, optimizer, batches


def _train(model, optimizer, task, batches, *, compile, trim=None):
    state = init_state(model.init(rng.key(0)), optimizer)
    step = make_step(task.loss_fn(model), optimizer, compile=compile, trim=trim)
    losses = []
    for i, batch in enumerate(batches):
        state, metrics = step(state, batch, rng.fold_in(rng.key(1), i))
        losses.append(float(metrics["loss"]))
    return state, losses


def test_same_seed_gives_bit_identical_run():
    dataset, model, optimizer, batches = _setup()
    task = task_for(dataset)
    state_a, losses_a = _train(model, optimizer, task, batches, compile=False)
    state_b, losses_b = _train(model, optimizer, task, batches, compile=False)
    assert losses_a == losses_b
    assert all(torch.equal(a, b) for a, b in zip(tree_leaves(state_a), tree_leaves(state_b)))
    assert losses_a[-1] < losses_a[0]


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_trimmed_step_trains_as_the_full_batch_does(compile):
    """``make_step(trim=task.trim_padding)`` computes on the positions some row uses (the
    complexity-2 batches are 9 wide, their questions need 7 or 8) and, without dropout,
    gives the full batch's losses and parameters to rounding."""
    dataset, model, optimizer, batches = _setup(dropout=0.0)
    optimizer = optim.flatten(optimizer)
    task = task_for(dataset)
    batches = [batches[i] for i in (0, 1, 4)]  # trimmed widths 8, 7, 8: two compiled graphs
    assert [task.trim_padding(b)["src"].shape[1] for b in batches] == [8, 7, 8]
    torch._dynamo.reset()
    full_state, full = _train(model, optimizer, task, batches, compile=False)
    state, trimmed = _train(
        model, optimizer, task, batches, compile=compile, trim=task.trim_padding
    )
    torch.testing.assert_close(
        torch.tensor(trimmed), torch.tensor(full), rtol=COMPILE_RTOL, atol=COMPILE_ATOL
    )
    for got, want in zip(tree_leaves(state.params), tree_leaves(full_state.params)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-3)  # see the compiled test below


def test_eager_gradients_equal_torch_func():
    """The eager step's autograd gradients are torch.func.grad_and_value's, unused
    parameters included (zeros), with the same loss and aux."""
    from torch.func import grad_and_value

    from seqfunc.train import autograd_value_and_grad

    dataset, model, _, batches = _setup()
    base = task_for(dataset).loss_fn(model)

    def loss_fn(params, batch, key):  # one extra parameter the loss never reads
        loss, aux = base(params["model"], batch, key)
        return loss, {**aux, "twice": 2 * loss}

    params = {"model": model.init(rng.key(0)), "unused": torch.ones(3)}
    key = rng.key(5)
    want_grads, (want_loss, want_aux) = grad_and_value(loss_fn, has_aux=True)(
        params, batches[0], key
    )
    grads, (loss, aux) = autograd_value_and_grad(loss_fn)(params, batches[0], key)
    assert torch.equal(loss, want_loss) and torch.equal(aux["twice"], want_aux["twice"])
    assert not loss.requires_grad and not aux["twice"].requires_grad
    assert torch.equal(grads["unused"], torch.zeros(3))
    for got, want in zip(tree_leaves(grads), tree_leaves(want_grads)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("flat", [False, True], ids=["per-leaf", "flattened"])
def test_compiled_step_matches_eager(flat):
    """Per leaf, the compiled step is the eager one compiled; with ``optim.flatten`` it holds
    the parameters as one vector instead (its own graph): both give eager's losses and
    parameters."""
    dataset, model, optimizer, batches = _setup()
    if flat:
        optimizer = optim.flatten(optimizer)
    task = task_for(dataset)
    torch._dynamo.reset()
    eager_state, eager = _train(model, optimizer, task, batches[:5], compile=False)
    with no_graph_breaks("the compiled step"):  # a step in pieces is slower than eager
        state, compiled = _train(model, optimizer, task, batches[:5], compile=True)
    torch.testing.assert_close(
        torch.tensor(compiled), torch.tensor(eager), rtol=COMPILE_RTOL, atol=COMPILE_ATOL
    )
    # Adam divides by sqrt(v): a gradient entry near zero may move its parameter by up to the
    # learning rate (3e-3 here) on a rounding difference, so parameters agree to a third of that
    for got, want in zip(tree_leaves(state.params), tree_leaves(eager_state.params)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-3)


def test_eager_flat_step_is_the_tree_step_bit_for_bit():
    """Eagerly, a flattened optimizer's step holds the parameters as one vector; it computes
    exactly what the tree step with the same transformation computes (here forced by hiding
    ``flat_inner``): same losses, same parameters, bit for bit."""
    dataset, model, optimizer, batches = _setup()
    flat = optim.flatten(optimizer)
    as_tree = optim.GradientTransformation(flat.init, flat.update)
    task = task_for(dataset)
    flat_state, flat_losses = _train(model, flat, task, batches[:6], compile=False)
    tree_state, tree_losses = _train(model, as_tree, task, batches[:6], compile=False)
    assert flat_losses == tree_losses
    pairs = zip(tree_leaves(flat_state.params), tree_leaves(tree_state.params))
    assert all(torch.equal(a, b) for a, b in pairs)
    assert flat_losses[-1] < flat_losses[0]


def test_flat_step_takes_params_it_did_not_return(tmp_path):
    """The flattened step, eager or compiled, reuses its own vector for the params it returned
    last; params from elsewhere (here a checkpoint of other weights, swapped in mid-run) are
    raveled again, as the tree step (the reference here) uses them. Its params (views of one
    vector) save and load as usual."""
    from seqfunc.serialization import load_params, save_params

    dataset, model, optimizer, batches = _setup()
    flat, task = optim.flatten(optimizer), task_for(dataset)
    as_tree = optim.GradientTransformation(flat.init, flat.update)  # no flat_inner: tree step
    other = model.init(rng.key(7))
    save_params(tmp_path / "other.safetensors", other)
    runs = []
    for optimizer, compile in ((as_tree, False), (flat, False), (flat, True)):
        step = make_step(task.loss_fn(model), optimizer, compile=compile)
        state, losses = init_state(model.init(rng.key(0)), optimizer), []
        for i, batch in enumerate(batches[:5]):
            if i == 3:
                state = state._replace(params=load_params(tmp_path / "other.safetensors", other))
            state, metrics = step(state, batch, rng.fold_in(rng.key(1), i))
            losses.append(float(metrics["loss"]))
        runs.append((losses, state))
    (tree, _), (eager, _), (compiled, state) = runs
    assert eager == tree
    torch.testing.assert_close(
        torch.tensor(compiled), torch.tensor(tree), rtol=COMPILE_RTOL, atol=COMPILE_ATOL
    )
    save_params(tmp_path / "after.safetensors", state.params)
    loaded = load_params(tmp_path / "after.safetensors", other)
    assert all(torch.equal(a, b) for a, b in zip(tree_leaves(loaded), tree_leaves(state.params)))


def test_fit_writes_a_complete_run_folder(tmp_path):
    cfg = TrainConfig(
        dataset_options={"complexity": 1, "epoch_size": 512, "val_size": 100},
        model_options={"d_model": 16, "heads": 2, "d_ff": 32},
        steps=20,
        batch_size=32,
        eval_every=10,
        log_every=5,
        examples=2,
        trim_padding=True,
    )
    final = fit(cfg, tmp_path, progress=False, log=lambda _: None)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["split"] == "val"]
    assert [r["step"] for r in val] == [10, 20]
    assert {"step", "split", "loss", "token_accuracy", "exact_match"} <= set(val[-1])
    assert val[-1]["exact_match"] == final["exact_match"]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20] and "grad_norm" in train[0]
    for name in ("config.json", "params.safetensors", "opt_state.safetensors", "state.json"):
        assert (tmp_path / name).is_file()
    pytest.importorskip("matplotlib")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_trim_padding_for_a_task_that_cannot_trim_is_a_config_error(tmp_path):
    cfg = TrainConfig(dataset="xor", model="baseline", steps=1, trim_padding=True)
    with pytest.raises(ConfigError, match="trim_padding=True: the 'classification' task"):
        fit(cfg, tmp_path, progress=False, log=lambda _: None)
    assert not (tmp_path / "config.json").exists()
