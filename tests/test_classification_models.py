"""Classifier models and the classification task: shapes, padding invariance, masks, training."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import nn, rng
from seqfunc.config import ConfigError
from seqfunc.models.classifier import (
    AttentionClassifier,
    BaselineClassifier,
    ClassifierConfig,
    SequenceClassifier,
    SimpleAttentionClassifier,
    TransformerClassifier,
)
from seqfunc.nn.pooling import masked_max, masked_mean
from seqfunc.runs import TrainConfig, build
from seqfunc.tasks import task_for

PAD = 0
VOCAB = 12

PRESETS = [
    ("none", "mean", False),
    ("none", "max", False),
    ("none", "select", False),
    ("simple", "select", False),
    ("simple", "max", False),
    ("attention", "select", False),
    ("attention", "mean", True),
    ("transformer", "select", True),
    ("transformer", "max", True),
]


def make(mixer, pool_kind, positions, **extra):
    config = ClassifierConfig(
        vocab_size=VOCAB,
        pad_id=PAD,
        mixer=mixer,
        pool=pool_kind,
        positions=positions,
        d_model=8,
        heads=2,
        blocks=2,
        max_len=40,
        **extra,
    )
    model = SequenceClassifier(config)
    return model, model.init(rng.key(3))


sequences = st.lists(
    st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=10), min_size=1, max_size=4
)


def padded(seqs, width):
    out = torch.full((len(seqs), width), PAD, dtype=torch.int64)
    for row, seq in enumerate(seqs):
        out[row, : len(seq)] = torch.tensor(seq)
    return out


@pytest.mark.parametrize("mixer, pool_kind, positions", PRESETS)
@settings(max_examples=15, deadline=None)
@given(seqs=sequences, extra=st.integers(0, 12))
def test_padding_never_changes_a_prediction(mixer, pool_kind, positions, seqs, extra):
    model, params = make(mixer, pool_kind, positions)
    width = max(map(len, seqs))
    tight = model.apply(params, padded(seqs, width))
    loose = model.apply(params, padded(seqs, width + extra))
    alone = torch.cat([model.apply(params, padded([s], len(s))) for s in seqs])
    assert tight.shape == (len(seqs), 2)
    torch.testing.assert_close(loose, tight, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, tight, atol=1e-5, rtol=1e-5)


def simple_self_attention(x, mask=None):
    """Assignment 004's parameter-free attention, as the classifier calls it (the "simple" kernel)."""
    return nn.multi_head_attention(
        {}, x, heads=1, kernel="simple", mask=None if mask is None else mask[:, None, None, :]
    )


@settings(max_examples=30, deadline=None)
@given(seqs=sequences, extra=st.integers(0, 5))
def test_masked_pools_and_simple_attention_ignore_padding(seqs, extra):
    x_full = torch.randn(len(seqs), max(map(len, seqs)) + extra, 3)
    mask = padded(seqs, x_full.shape[1]) != PAD
    for row, seq in enumerate(seqs):
        real = x_full[row, : len(seq)]
        torch.testing.assert_close(masked_mean(x_full, mask)[row], real.mean(0))
        torch.testing.assert_close(masked_max(x_full, mask)[row], real.amax(0))
        attended = simple_self_attention(x_full, mask)[row, : len(seq)]
        torch.testing.assert_close(
            attended, simple_self_attention(real[None])[0], atol=1e-5, rtol=1e-5
        )


def test_simple_attention_matches_the_seed_formula():
    x = torch.randn(2, 5, 4)
    weights = torch.softmax(torch.bmm(x, x.transpose(1, 2)), dim=2)
    torch.testing.assert_close(simple_self_attention(x), torch.bmm(weights, x))


def test_presets_and_config_errors():
    from seqfunc.data.synthetic import SyntheticConfig, XorDataset

    data = XorDataset(SyntheticConfig(train_size=10, val_size=10))
    assert BaselineClassifier.config_for(data).pool == "mean"
    assert BaselineClassifier.config_for(data).d_model == 300
    assert SimpleAttentionClassifier.config_for(data).mixer == "simple"
    assert AttentionClassifier.config_for(data, positions=True).positions
    t = TransformerClassifier.config_for(data)
    assert (t.blocks, t.positions, t.pool) == (3, True, "select")
    assert AttentionClassifier.config_for(data).vocab_size == len(data.vocab) == 6
    with pytest.raises(ConfigError, match="pool"):
        ClassifierConfig(vocab_size=5, pad_id=0, pool="median")
    with pytest.raises(ConfigError, match="heads"):
        ClassifierConfig(vocab_size=5, pad_id=0, mixer="attention", d_model=10, heads=3)


def test_dropout_needs_a_key_and_is_deterministic_given_one():
    model, params = make("transformer", "select", True, dropout=0.3)
    tokens = padded([[1, 2, 3], [4, 5]], 3)
    key = rng.key(1)
    a = model.apply(params, tokens, key=key, train=True)
    torch.testing.assert_close(a, model.apply(params, tokens, key=key, train=True))
    assert not torch.allclose(a, model.apply(params, tokens))
    with pytest.raises(ValueError, match="key"):
        model.apply(params, tokens, train=True)


def test_task_loss_and_evaluate_on_xor_learns():
    from seqfunc.runs.ensemble import fit_ensemble

    cfg = TrainConfig(
        dataset="xor",
        model="attention",
        model_options={"positions": True},
        dataset_options={"train_size": 2000, "val_size": 200},
        epochs=3,
        batch_size=32,
        lr=3e-3,
        schedule="constant",
        eval_batch_size=200,
    )
    dataset, model, task = build(cfg)
    result = fit_ensemble(cfg, [0], dataset=dataset, model=model, task=task)
    metrics = result.members[0]["val"]
    assert metrics["examples"] == 200 and metrics["accuracy"] > 0.99
    lines = task.examples(
        model,
        result.params and __import__("seqfunc.tree").tree.tree_unstack(result.params)[0],
        dataset,
        3,
    )
    assert len(lines) == 3 and all("|" in line for line in lines)
    assert task_for(dataset).classes == ("negative", "positive")
