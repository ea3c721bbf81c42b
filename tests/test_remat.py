"""Recomputed blocks (``-m remat=true``): the gradients of the plain model, bit for bit, dropout
on (its masks are a hash of the key and the index, so the recomputation draws them again);
under plain autograd, torch.func's transforms, vmap, and one compiled graph."""

from __future__ import annotations

import pytest
import torch
from torch.func import grad_and_value, vmap

from seqfunc import rng
from seqfunc.metrics import cross_entropy
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig
from seqfunc.models.transformer_lm import TransformerLM, TransformerLMConfig
from seqfunc.nn.remat import remat
from seqfunc.testing.invariants import no_graph_breaks
from seqfunc.train import autograd_value_and_grad
from seqfunc.tree import flatten_dict, tree_stack

VOCAB, PAD = 13, 0


def tokens(seed: int, shape=(4, 10)) -> torch.Tensor:
    return (rng.random_bits(rng.key(seed), shape) % VOCAB).long()


def gpt(remat, layers=2):
    config = GPTConfig(
        VOCAB, context=10, d_model=16, heads=2, layers=layers, dropout=0.3, remat=remat
    )
    return GPT(config), {"x": tokens(1)}


def transformer_lm(remat):
    config = TransformerLMConfig(VOCAB, d_model=16, heads=2, d_ff=24, layers=2, remat=remat)
    return TransformerLM(config), {"x": tokens(2)}


def seq2seq(remat):
    config = Seq2SeqTransformerConfig(
        VOCAB, PAD, d_model=16, heads=2, d_ff=24, dropout=0.3, remat=remat
    )
    src, tgt = tokens(3), tokens(4)
    src[:, 7:] = PAD  # padded sources: masks travel through the recomputed layers
    return Seq2SeqTransformer(config), {"src": src, "tgt": tgt}


MODELS = {"gpt": gpt, "transformer_lm": transformer_lm, "seq2seq": seq2seq}


def loss_of(model, batch):
    def loss(params, key):
        if "src" in batch:
            logits = model.apply(params, batch["src"], batch["tgt"], key=key, train=True)
            return cross_entropy(logits, batch["tgt"], ignore_index=PAD), {}
        logits = model.apply(params, batch["x"], key=key, train=True)
        return cross_entropy(logits, batch["x"]), {}

    return loss


def gradients(name: str, remat: bool, transform: str = "autograd") -> dict:
    model, batch = MODELS[name](remat)
    params, loss = model.init(rng.key(0)), loss_of(model, batch)
    if transform == "autograd":
        grads, _ = autograd_value_and_grad(loss)(params, rng.key(9))
    else:
        grads, _ = grad_and_value(loss, has_aux=True)(params, rng.key(9))
    return flatten_dict(grads)


def assert_equal_trees(got: dict, expected: dict):
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


@pytest.mark.parametrize("transform", ["autograd", "torch.func"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_recomputed_blocks_give_the_plain_gradients(name, transform):
    assert_equal_trees(gradients(name, True, transform), gradients(name, False, transform))


def test_recomputation_runs_the_block_again_in_the_backward():
    calls = []

    def block(x, w):
        calls.append(1)
        return torch.tanh(x @ w)

    w = torch.randn(4, 4, requires_grad=True)
    remat(block)(torch.randn(2, 4), w).sum().backward()
    assert len(calls) == 2  # forward, then again in the backward
    expected = torch.autograd.grad(block(torch.randn(2, 4), w).sum(), w)
    assert expected[0].shape == w.grad.shape


def test_recomputed_blocks_vmap_over_members():
    model, batch = gpt(True)
    plain, _ = gpt(False)
    params = [model.init(rng.key(i)) for i in range(2)]

    def member_grads(m, p):
        return grad_and_value(loss_of(m, batch), has_aux=True)(p, rng.key(9))[0]

    got = vmap(lambda p: member_grads(model, p))(tree_stack(params))
    for i, p in enumerate(params):
        expected = flatten_dict(member_grads(plain, p))
        for name, g in flatten_dict(got).items():
            torch.testing.assert_close(g[i], expected[name], rtol=1e-6, atol=1e-7, msg=name)


@pytest.mark.slow
def test_recomputed_gpt_compiles_whole_and_matches_eager():
    model, batch = gpt(True, layers=1)
    params, loss = model.init(rng.key(0)), loss_of(model, batch)
    step = torch.compile(lambda p, k: grad_and_value(loss, has_aux=True)(p, k)[0])
    with no_graph_breaks("the recomputed GPT's gradient"):
        compiled = flatten_dict(step(params, rng.key(9)))
    plain, _ = gpt(False, layers=1)
    eager = flatten_dict(autograd_value_and_grad(loss_of(plain, batch))(params, rng.key(9))[0])
    for name, g in compiled.items():
        torch.testing.assert_close(g, eager[name], rtol=1e-4, atol=1e-5, msg=name)
