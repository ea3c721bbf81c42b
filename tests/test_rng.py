import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.func import vmap

from seqfunc import rng


def test_same_key_same_numbers_and_different_keys_differ():
    a = rng.uniform(rng.key(0), (1000,))
    assert torch.equal(a, rng.uniform(rng.key(0), (1000,)))
    assert not torch.equal(a, rng.uniform(rng.key(1), (1000,)))


def test_uniform_and_normal_moments():
    u = rng.uniform(rng.key(3), (200_000,))
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01
    assert abs(float(u.var()) - 1 / 12) < 0.005
    n = rng.normal(rng.key(4), (200_000,))
    assert abs(float(n.mean())) < 0.01 and abs(float(n.std()) - 1) < 0.01


def test_bernoulli_rate():
    assert abs(float(rng.bernoulli(rng.key(5), 0.1, (200_000,)).float().mean()) - 0.1) < 0.005
    with pytest.raises(ValueError, match="p must be in"):
        rng.bernoulli(rng.key(5), 1.5, (3,))


def test_split_and_fold_in_give_distinct_streams():
    keys = rng.split(rng.key(0), 8)
    assert keys.shape == (8, 2)
    draws = torch.stack([rng.uniform(k, (500,)) for k in keys])
    folded = torch.stack([rng.uniform(rng.fold_in(rng.key(0), i), (500,)) for i in range(8)])
    for block in (draws, folded):
        corr = torch.corrcoef(block) - torch.eye(8)
        assert float(corr.abs().max()) < 0.2
    assert len({tuple(k.tolist()) for k in keys}) == 8


def test_vmap_over_keys_equals_loop():
    keys = rng.split(rng.key(7), 4)
    batched = vmap(lambda k: rng.normal(k, (3, 5)))(keys)
    looped = torch.stack([rng.normal(k, (3, 5)) for k in keys])
    assert torch.equal(batched, looped)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**40))
def test_key_accepts_any_nonnegative_seed(seed):
    k = rng.key(seed)
    assert k.dtype == torch.int64 and k.shape == (2,)
    assert int(k.min()) >= 0 and int(k.max()) < 2**32


def test_key_rejects_non_int():
    with pytest.raises(TypeError, match="seed must be an int"):
        rng.key(1.5)


def test_compiled_draws_equal_eager():
    fn = lambda k: rng.uniform(k, (4, 7))
    k = rng.key(11)
    assert torch.equal(torch.compile(fn)(k), fn(k))
