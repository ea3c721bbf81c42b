"""Dropout in a shard of rows draws the masks one process draws for those rows; a rate given
as a tensor (a sweep member's) draws the mask of the same number."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import vmap

from seqfunc import nn, rng
from seqfunc.nn.dropout import global_rows


def shards(rows: int, parts: int) -> list[tuple[int, int]]:
    bounds = torch.arange(rows).tensor_split(parts)
    return [(int(b[0]), len(b)) for b in bounds]


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(2, 9),
    parts=st.integers(1, 4),
    tail=st.lists(st.integers(1, 5), max_size=3),
    seed=st.integers(0, 2**31),
    rate=st.sampled_from([0.1, 0.5, 0.9]),
)
def test_shards_of_rows_draw_the_whole_batch_masks(rows, parts, tail, seed, rate):
    parts = min(parts, rows)
    x = torch.randn(rows, *tail)
    key = rng.key(seed)
    whole = nn.dropout(x, rate, key=key, train=True)
    pieces = []
    for start, count in shards(rows, parts):
        with global_rows(start, count):
            pieces.append(nn.dropout(x[start : start + count], rate, key=key, train=True))
    assert torch.equal(torch.cat(pieces), whole)


def test_a_compiled_step_draws_its_shards_masks():
    x, key = torch.randn(6, 4, 5), rng.key(3)
    whole = nn.dropout(x, 0.3, key=key, train=True)
    compiled = torch.compile(lambda t, k: nn.dropout(t, 0.3, key=k, train=True), dynamic=False)
    with global_rows(3, 3):
        assert torch.equal(compiled(x[3:], key), whole[3:])
    with global_rows(0, 3):
        assert torch.equal(compiled(x[:3], key), whole[:3])


def test_outside_a_shard_and_in_the_first_one_masks_are_unshifted():
    x, key = torch.randn(4, 3), rng.key(1)
    with global_rows(0, 2):
        first = nn.dropout(x[:2], 0.5, key=key, train=True)
    assert torch.equal(first, nn.dropout(x[:2], 0.5, key=key, train=True))


def test_a_tensor_that_is_not_batch_major_is_refused():
    with global_rows(2, 4), pytest.raises(ValueError, match="leading dimension must be the batch"):
        nn.dropout(torch.randn(3, 3), 0.5, key=rng.key(0), train=True)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), rate=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]))
def test_a_tensor_rate_drops_as_its_number(seed, rate):
    x, key = torch.randn(7, 9), rng.key(seed)
    as_number = nn.dropout(x, rate, key=key, train=True)
    as_tensor = nn.dropout(x, torch.tensor(rate, dtype=torch.float64), key=key, train=True)
    torch.testing.assert_close(as_tensor, as_number, rtol=1e-6, atol=0)
    assert torch.equal(as_tensor == 0, as_number == 0)


def test_members_rates_under_vmap_are_each_their_own():
    x, key = torch.randn(5, 6), rng.key(2)
    rates = torch.tensor([0.0, 0.3, 0.8], dtype=torch.float64)
    got = vmap(lambda r: nn.dropout(x, r, key=key, train=True))(rates)
    for row, rate in zip(got, rates.tolist()):
        torch.testing.assert_close(row, nn.dropout(x, rate, key=key, train=True), rtol=1e-6, atol=0)
    assert torch.equal(got[0], x)  # rate 0: untouched
