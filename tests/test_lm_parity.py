"""seqfunc's ``transformer_lm`` against the tutorial's ``nn.TransformerEncoder`` model (assignment 002):
the same logits from the same weights, and the same initial distribution for every tensor."""

import math
import sys
from pathlib import Path

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.models.transformer_lm import TransformerLM, TransformerLMConfig
from seqfunc.tree import flatten_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from tutorial_lm import TransformerModel, seqfunc_params  # noqa: E402

VOCAB = 1000


def pair(layers=2, d=200, heads=2, d_ff=200, norm_first=False, seed=0):
    torch.manual_seed(seed)
    module = TransformerModel(VOCAB, d, heads, d_ff, layers, 0.2, norm_first=norm_first).eval()
    ours = TransformerLM(
        TransformerLMConfig(
            vocab_size=VOCAB,
            d_model=d,
            heads=heads,
            d_ff=d_ff,
            layers=layers,
            dropout=0.2,
            norm_first=norm_first,
        )
    )
    return module, ours


@settings(max_examples=6, deadline=None)
@given(
    layers=st.integers(1, 3),
    heads=st.sampled_from([1, 2, 4]),
    d_ff=st.sampled_from([16, 48]),
    norm_first=st.booleans(),
    t=st.integers(1, 12),
    b=st.integers(1, 3),
    seed=st.integers(0, 99),
)
def test_module_weights_give_the_module_logits(layers, heads, d_ff, norm_first, t, b, seed):
    module, ours = pair(layers, 32, heads, d_ff, norm_first, seed)
    src = torch.randint(VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = module(src.t(), module.generate_square_subsequent_mask(t)).transpose(0, 1)
        got = ours.apply(seqfunc_params(module), src)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_seed_shape_gives_the_module_logits(norm_first):
    module, ours = pair(norm_first=norm_first)
    src = torch.randint(VOCAB, (4, 35), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = module(src.t(), module.generate_square_subsequent_mask(35)).transpose(0, 1)
        got = ours.apply(seqfunc_params(module), src)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_default_init_draws_every_tensor_from_the_modules_distribution():
    """Per tensor: constants equal the module's; random tensors have the module's range (the
    largest |x| within 3 % of the module's) and spread (std within 10 %: for the smallest
    tensors, 200 entries, that is > 3 standard errors of the estimate)."""
    module, ours = pair(layers=2)
    reference = flatten_dict(seqfunc_params(module))
    drawn = flatten_dict(ours.init(rng.key(0)))
    assert drawn.keys() == reference.keys()
    for name, ref in reference.items():
        got = drawn[name]
        assert got.shape == ref.shape, name
        if ref.std() == 0:
            torch.testing.assert_close(got, ref, msg=name)
            continue
        assert got.abs().max() <= ref.abs().max() * 1.03, name
        assert got.abs().max() >= ref.abs().max() * 0.97, name
        assert math.isclose(got.std(), ref.std(), rel_tol=0.10), (
            name,
            float(got.std()),
            float(ref.std()),
        )


def test_train_mode_drops_attention_weights_like_the_module():
    """Dropout on the attention weights: with every other dropout off, the train-mode output
    differs from eval mode (it would not if only the sublayer outputs were dropped)."""
    module, ours = pair(layers=1, d=32, heads=2, d_ff=16)
    params = seqfunc_params(module)
    src = torch.randint(VOCAB, (2, 8), generator=torch.Generator().manual_seed(0))
    assert ours.block_options.attention_dropout == ours.config.dropout
    no_sublayer_dropout = TransformerLM(
        TransformerLMConfig(
            vocab_size=VOCAB,
            d_model=32,
            heads=2,
            d_ff=16,
            layers=1,
            dropout=0.0,
        )
    )
    no_sublayer_dropout.block_options = attrs.evolve(
        no_sublayer_dropout.block_options, attention_dropout=0.5
    )
    with torch.no_grad():
        eval_out = no_sublayer_dropout.apply(params, src)
        train_out = no_sublayer_dropout.apply(params, src, key=rng.key(3), train=True)
    assert not torch.allclose(eval_out, train_out)
