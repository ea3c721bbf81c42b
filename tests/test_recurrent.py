"""Recurrent stacks (``seqfunc.nn.recurrent``): equal to torch.nn.RNN/LSTM/GRU with the same
weights, initial and final state included; the single-bias variant; keyed inter-layer dropout."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.config import ConfigError
from seqfunc.nn import recurrent
from seqfunc.nn.dropout import dropout

TORCH = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def torch_twin(kind: str, params: list[dict]) -> torch.nn.Module:
    """A ``torch.nn.<KIND>(num_layers=len(params))`` holding ``params`` (a single bias
    becomes ``bias_ih`` with ``bias_hh`` = 0)."""
    layers, d_in = len(params), params[0]["weight_ih"].shape[1]
    module = TORCH[kind](d_in, params[0]["weight_hh"].shape[1], num_layers=layers, batch_first=True)
    with torch.no_grad():
        for i, layer in enumerate(params):
            bias_ih = layer.get("bias", layer.get("bias_ih"))
            bias_hh = layer.get("bias_hh", torch.zeros_like(bias_ih))
            for name, value in (
                ("weight_ih", layer["weight_ih"]),
                ("weight_hh", layer["weight_hh"]),
                ("bias_ih", bias_ih),
                ("bias_hh", bias_hh),
            ):
                getattr(module, f"{name}_l{i}").copy_(value)
    return module


def to_torch_state(kind, state):
    """Our per-layer state -> torch's ``h (L, b, h)`` or ``(h, c)``."""
    if kind == "lstm":
        return torch.cat([h for h, _ in state]), torch.cat([c for _, c in state])
    return torch.cat(state)


def from_torch_state(kind, state):
    if kind == "lstm":
        h, c = state
        return [(h[i : i + 1], c[i : i + 1]) for i in range(h.shape[0])]
    return [state[i : i + 1] for i in range(state.shape[0])]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    kind=st.sampled_from(recurrent.KINDS),
    input_size=st.integers(1, 6),
    hidden=st.integers(1, 8),
    layers=st.integers(1, 3),
    length=st.integers(1, 12),
    batch=st.integers(1, 4),
    with_state=st.booleans(),
    single_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_stack_equals_torch_module(
    kind, input_size, hidden, layers, length, batch, with_state, single_bias, seed
):
    k_params, k_x, k_h, k_c = rng.split(rng.key(seed), 4)
    params = recurrent.init_recurrent(
        k_params, kind, input_size, hidden, layers, single_bias=single_bias
    )
    x = rng.normal(k_x, (batch, length, input_size))
    state = None
    if with_state:
        h0 = rng.normal(k_h, (layers, batch, hidden))
        state = from_torch_state(
            kind, (h0, rng.normal(k_c, (layers, batch, hidden))) if kind == "lstm" else h0
        )
    fn = {"rnn": recurrent.rnn, "lstm": recurrent.lstm, "gru": recurrent.gru}[kind]
    out, final = fn(params, x, state)

    module = torch_twin(kind, params)
    with torch.no_grad():
        expected, expected_final = (
            module(x) if state is None else module(x, to_torch_state(kind, state))
        )
    assert out.shape == (batch, length, hidden)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    if kind == "lstm":
        for ours, theirs in zip(to_torch_state(kind, final), expected_final):
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    else:
        torch.testing.assert_close(
            to_torch_state(kind, final), expected_final, atol=1e-5, rtol=1e-5
        )
    # the final state is the last step's output of the top layer
    top = final[-1][0] if kind == "lstm" else final[-1]
    torch.testing.assert_close(top[0], out[:, -1], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", recurrent.KINDS)
def test_state_carries_across_chunks(kind):
    params = recurrent.init_recurrent(rng.key(1), kind, 3, 5, layers=2)
    x = rng.normal(rng.key(2), (2, 9, 3))
    whole, _ = recurrent.recurrent(kind, params, x)
    first, state = recurrent.recurrent(kind, params, x[:, :4])
    rest, _ = recurrent.recurrent(kind, params, x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, atol=1e-6, rtol=1e-6)


def test_single_bias_layout_counts_and_gradients():
    two = recurrent.init_rnn(rng.key(0), 100, 256, layers=2)
    one = recurrent.init_rnn(rng.key(0), 100, 256, layers=2, single_bias=True)
    count = lambda p: sum(t.numel() for layer in p for t in layer.values())
    assert sorted(one[0]) == ["bias", "weight_hh", "weight_ih"]
    assert count(two) - count(one) == 2 * 256
    assert count(one) == 222_720  # (256*100 + 256*256 + 256) + (2*256*256 + 256)
    x = rng.normal(rng.key(3), (2, 5, 100))
    grads = torch.func.grad(lambda p: recurrent.rnn(p, x)[0].sum())(one)
    assert all(g["bias"].abs().sum() > 0 for g in grads)


def test_single_bias_lstm_equals_two_biases_with_their_sum():
    two = recurrent.init_lstm(rng.key(0), 4, 6, layers=2)
    one = [
        {
            "weight_ih": l["weight_ih"],
            "weight_hh": l["weight_hh"],
            "bias": l["bias_ih"] + l["bias_hh"],
        }
        for l in two
    ]
    x = rng.normal(rng.key(1), (3, 7, 4))
    torch.testing.assert_close(
        recurrent.lstm(one, x)[0], recurrent.lstm(two, x)[0], atol=1e-6, rtol=1e-6
    )


def test_inter_layer_dropout_is_determined_by_the_key():
    params = recurrent.init_gru(rng.key(0), 4, 16, layers=3)
    x = rng.normal(rng.key(1), (2, 6, 4))
    run = lambda key, train=True: recurrent.gru(params, x, dropout_rate=0.5, key=key, train=train)[
        0
    ]
    a, again, other = run(rng.key(7)), run(rng.key(7)), run(rng.key(8))
    assert torch.equal(a, again)
    assert not torch.allclose(a, other)
    plain = recurrent.gru(params, x)[0]
    assert not torch.allclose(a, plain)
    assert torch.equal(run(rng.key(7), train=False), plain)  # eval: no dropout
    # the dropout sits between layers only: layer i > 0 reads a mask drawn from split(key)[i]
    keys = rng.split(rng.key(7), 3)
    h, _ = recurrent.gru(params[:1], x)
    for i in (1, 2):
        h, _ = recurrent.gru(params[i : i + 1], dropout(h, 0.5, key=keys[i], train=True))
    torch.testing.assert_close(a, h, atol=1e-6, rtol=1e-6)


def test_dropout_without_a_key_and_bad_arguments_are_named():
    params = recurrent.init_rnn(rng.key(0), 3, 4, layers=2)
    x = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match="no key"):
        recurrent.rnn(params, x, dropout_rate=0.1, train=True)
    with pytest.raises(ConfigError, match="kind='elman'"):
        recurrent.init_recurrent(rng.key(0), "elman", 3, 4)
    with pytest.raises(ConfigError, match="hidden_size=0"):
        recurrent.init_rnn(rng.key(0), 3, 0)
    with pytest.raises(ValueError, match="state has 1 layer"):
        recurrent.rnn(params, x, [torch.zeros(1, 1, 4)])
