"""Precision (``-t precision=bf16|fp16``): the loss and its gradient compute in the lower
dtype from float32 parameters; the parameters, the gradient and the optimizer state stay
float32; the loss is float32. bf16's step is finite and close to fp32's; fp16's overflow is
caught by its loss scale."""

from __future__ import annotations

import pytest
import torch

from seqfunc import optim, rng
from seqfunc.errors import ConfigError
from seqfunc.loss_scale import dynamic_loss_scale
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.precision import cast_floating, compute_dtype, in_precision
from seqfunc.runs.config import TrainConfig
from seqfunc.tasks.language_model import LanguageModelTask
from seqfunc.testing.invariants import no_graph_breaks
from seqfunc.train import autograd_value_and_grad, init_state, make_step
from seqfunc.tree import tree_leaves

VOCAB = 17


def setup(layers=2):
    model = GPT(GPTConfig(VOCAB, context=16, d_model=32, heads=4, layers=layers, dropout=0.1))
    tokens = (rng.random_bits(rng.key(3), (8, 17)) % VOCAB).long()
    return model, {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}


def adam():
    return optim.flatten(optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-2)))


def steps(precision: str, optimizer, n=3, compile=False, layers=2):
    model, batch = setup(layers)
    step = make_step(
        LanguageModelTask().loss_fn(model), optimizer, precision=precision, compile=compile
    )
    state = init_state(model.init(rng.key(0)), optimizer)
    metrics = []
    for i in range(n):
        state, m = step(state, batch, rng.fold_in(rng.key(1), i))
        metrics.append(m)
    return state, metrics


def test_bf16_step_is_finite_and_close_to_fp32():
    state32, m32 = steps("fp32", adam())
    state16, m16 = steps("bf16", adam())
    for a, b in zip(m32, m16):
        assert b["loss"].dtype == torch.float32 and torch.isfinite(b["loss"])
        assert abs(float(a["loss"]) - float(b["loss"])) < 0.02 * float(a["loss"])
        assert abs(float(a["grad_norm"]) - float(b["grad_norm"])) < 0.05 * float(a["grad_norm"])
    for a, b in zip(tree_leaves(state32), tree_leaves(state16)):
        assert a.dtype == b.dtype  # parameters and optimizer state stay float32


def test_bf16_gradient_points_where_fp32_gradient_does():
    model, batch = setup()
    params, loss = model.init(rng.key(0)), LanguageModelTask().loss_fn(model)
    flat = {}
    for precision in ("fp32", "bf16"):
        grads, _ = autograd_value_and_grad(in_precision(loss, precision))(params, batch, rng.key(1))
        assert all(g.dtype == torch.float32 for g in tree_leaves(grads))
        flat[precision] = torch.cat([g.reshape(-1) for g in tree_leaves(grads)])
    cosine = torch.nn.functional.cosine_similarity(flat["fp32"], flat["bf16"], dim=0)
    assert cosine > 0.999
    assert abs(flat["bf16"].norm() / flat["fp32"].norm() - 1) < 0.01


@pytest.mark.slow
def test_bf16_step_compiles():
    _, eager = steps("bf16", adam(), n=2, layers=1)
    with no_graph_breaks("the bf16 step"):
        _, compiled = steps("bf16", adam(), n=2, compile=True, layers=1)
    for a, b in zip(eager, compiled):
        assert abs(float(a["loss"]) - float(b["loss"])) < 0.01 * float(a["loss"])


def test_fp16_overflow_through_the_step_skips_and_halves_the_scale():
    """A scale of 2**40 makes the fp16 gradients infinite: the update is skipped (the
    parameters stay as they were) and the scale halves, step after step, until it fits."""
    optimizer = optim.flatten(
        dynamic_loss_scale(optim.apply_if_finite(optim.adam(1e-2)), initial_scale=2.0**40)
    )
    model, _ = setup()
    state, metrics = steps("fp16", optimizer, n=3)
    initial = tree_leaves(model.init(rng.key(0)))
    assert all(torch.equal(a, b) for a, b in zip(tree_leaves(state.params), initial))
    assert [float(m["loss_scale"]) for m in metrics] == [2.0**40, 2.0**39, 2.0**38]
    assert all(torch.isfinite(m["loss"]) for m in metrics)  # the loss itself is float32


def test_fp16_with_a_fitting_scale_trains_close_to_fp32():
    optimizer = optim.flatten(dynamic_loss_scale(adam().flat_inner, initial_scale=2.0**8))
    _, m16 = steps("fp16", optimizer)
    _, m32 = steps("fp32", adam())
    for a, b in zip(m32, m16):
        assert abs(float(a["loss"]) - float(b["loss"])) < 0.01 * float(a["loss"])


def test_the_cast_leaves_integers_and_fp32_loss_functions_alone():
    tree = {"w": torch.ones(2), "ids": torch.arange(3)}
    cast = cast_floating(tree, torch.bfloat16)
    assert cast["w"].dtype == torch.bfloat16 and cast["ids"].dtype == torch.int64
    loss = lambda p, b, k: (p["w"].sum(), {})
    assert in_precision(loss, "fp32") is loss


def test_unknown_precision_is_one_line():
    with pytest.raises(ConfigError, match="precision='fp8': must be one of fp32, bf16, fp16"):
        compute_dtype("fp8")
    with pytest.raises(ConfigError, match="TrainConfig.precision='fp8'"):
        TrainConfig(precision="fp8")


def test_cli_refuses_an_unknown_precision_in_one_line(tmp_path, capsys):
    from seqfunc import cli

    argv = ["train", "toy_grammar", "--steps", "1", "-t", "precision=fp8"]
    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "precision='fp8': must be one of fp32, bf16, fp16" in line
