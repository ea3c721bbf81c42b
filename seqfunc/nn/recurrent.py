"""Recurrent layers over our parameter pytree, run by torch's fused kernels.

Three cells, as torch names them: ``"rnn"`` (Elman, ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``,
``torch.nn.RNN``), ``"lstm"`` (``torch.nn.LSTM``) and ``"gru"`` (``torch.nn.GRU``). The
parameters live in our pytree and the kernel is borrowed through
:func:`torch.func.functional_call` on a parameter-less template module (one layer, built once
per shape, on the ``meta`` device)::

    params = init_lstm(key, input_size=32, hidden_size=64, layers=2)
    out, state = lstm(params, x)                       # x (b, t, 32) -> out (b, t, 64)
    out2, state = lstm(params, x_next, state)          # carry (h, c) across chunks

**Which code runs.** Each layer is one call of the template module, so torch dispatches it
as ``torch.nn.RNN/LSTM/GRU`` would: on the CPU one fused ``_VF`` kernel per layer
(``_VF.rnn_tanh`` / ``_VF.lstm`` / ``_VF.gru``: the time loop, the gate arithmetic and their
backward in C++), on a CUDA device cuDNN's fused kernel (one launch per layer instead of
several per time step). Layers run one at a time (not ``num_layers=L`` in one call) so that
dropout between them takes an explicit key: torch's own inter-layer dropout would draw from
the global RNG.

**Why not a Python scan** (``for t: h = cell(x_t, h)``). One implementation of the three
cells that is torch's, so a torch state dict maps over and torch's module is the test oracle;
cuDNN on GPUs, where a scan pays several kernel launches per step; and on the CPU the fused
LSTM is faster (measured on this 2-core machine, one thread, batch 64, 30 steps, hidden 128,
forward + backward: fused LSTM 21-27 ms, a Python scan with the input projection hoisted out
of the loop 36-42 ms; for the tanh RNN, which has one matmul and one ``tanh`` per step, the two
are even, 11-12 ms). The price: the fused kernels have no ``vmap`` batching rule, so models
built on them cannot be vmapped over stacked parameters (ensembles train them member by
member).

Parameter names follow torch (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``; LSTM
gates ``i, f, g, o`` and GRU gates ``r, z, n`` stacked), so a torch state dict maps over
directly. With ``single_bias=True`` a layer holds one ``bias`` instead of the two: the textbook
``h' = tanh(W x + U h + b)``, run through the same kernel with ``bias_hh`` = 0. For the RNN and
the LSTM that is the same function class with ``G h`` fewer parameters per layer (only the sum
of the two biases ever matters); for the GRU it fixes the hidden bias of the ``n`` gate (inside
``r * (W_hn h + b_hn)``) at zero. Reused by any model with a recurrent encoder/decoder (language
models, classifiers, seq2seq RNNs).
"""

from __future__ import annotations

import functools
import math

import torch
from torch.func import functional_call

from seqfunc import rng
from seqfunc.config import ConfigError
from seqfunc.nn.dropout import active as dropout_active
from seqfunc.nn.dropout import dropout

#: cell kind -> gate blocks stacked in each weight (rows = gates * hidden_size)
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
KINDS = tuple(GATES)
_MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def _check_kind(kind: str) -> None:
    if kind not in GATES:
        raise ConfigError(f"recurrent kind={kind!r}: must be one of {', '.join(KINDS)}")


@functools.cache
def _template(kind: str, input_size: int, hidden_size: int) -> torch.nn.Module:
    # torch.nn.RNN's default nonlinearity is tanh (the Elman RNN)
    return _MODULES[kind](input_size, hidden_size, num_layers=1, batch_first=True, device="meta")


def _torch_names(layer: dict) -> dict:
    """Our layer dict -> the template's parameter names; a single ``bias`` becomes
    ``bias_ih`` with a zero ``bias_hh``."""
    if "bias" in layer:
        layer = {
            "weight_ih": layer["weight_ih"],
            "weight_hh": layer["weight_hh"],
            "bias_ih": layer["bias"],
            "bias_hh": torch.zeros_like(layer["bias"]),
        }
    return {f"{name}_l0": value for name, value in layer.items()}


def init_recurrent(
    key: rng.KeyArray,
    kind: str,
    input_size: int,
    hidden_size: int,
    layers: int = 1,
    *,
    single_bias: bool = False,
) -> list[dict]:
    """Per layer ``{"weight_ih": (G h, in), "weight_hh": (G h, h), "bias_ih": (G h,),
    "bias_hh": (G h,)}`` (or one ``"bias": (G h,)`` with ``single_bias``) with ``G`` = 1 (RNN),
    4 (LSTM) or 3 (GRU), all U(-1/sqrt(h), 1/sqrt(h)) as torch; ``in`` is ``input_size`` for
    the first layer and ``hidden_size`` above it."""
    _check_kind(kind)
    for name, value in (
        ("input_size", input_size),
        ("hidden_size", hidden_size),
        ("layers", layers),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"init_recurrent: {name}={value!r}: must be an int > 0")
    gates, bound = GATES[kind] * hidden_size, 1.0 / math.sqrt(hidden_size)
    params = []
    for i, k in enumerate(rng.split(key, layers)):
        k1, k2, k3, k4 = rng.split(k, 4)
        d_in = input_size if i == 0 else hidden_size
        draw = lambda kk, shape: rng.uniform(kk, shape, low=-bound, high=bound)
        layer = {"weight_ih": draw(k1, (gates, d_in)), "weight_hh": draw(k2, (gates, hidden_size))}
        if single_bias:
            layer["bias"] = draw(k3, (gates,))
        else:
            layer.update(bias_ih=draw(k3, (gates,)), bias_hh=draw(k4, (gates,)))
        params.append(layer)
    return params


def init_rnn(
    key: rng.KeyArray,
    input_size: int,
    hidden_size: int,
    layers: int = 1,
    *,
    single_bias: bool = False,
) -> list[dict]:
    return init_recurrent(key, "rnn", input_size, hidden_size, layers, single_bias=single_bias)


def init_lstm(
    key: rng.KeyArray,
    input_size: int,
    hidden_size: int,
    layers: int = 1,
    *,
    single_bias: bool = False,
) -> list[dict]:
    return init_recurrent(key, "lstm", input_size, hidden_size, layers, single_bias=single_bias)


def init_gru(
    key: rng.KeyArray,
    input_size: int,
    hidden_size: int,
    layers: int = 1,
    *,
    single_bias: bool = False,
) -> list[dict]:
    return init_recurrent(key, "gru", input_size, hidden_size, layers, single_bias=single_bias)


def recurrent(
    kind: str,
    params: list[dict],
    x: torch.Tensor,
    state=None,
    *,
    dropout_rate: float = 0.0,
    key: rng.KeyArray | None = None,
    train: bool = False,
):
    """``x (b, t, in)`` -> ``(out (b, t, h), state)``: ``out`` is the last layer's hidden state
    at every step; ``state`` is a list with one entry per layer: ``(h, c)`` for an LSTM (each
    ``(1, b, h)``), ``h`` ``(1, b, h)`` for an RNN or a GRU. The ``state`` argument (same form;
    None for zeros) is the initial state, the returned one the state after the last step.
    Dropout (rate, key) applies between layers, as ``torch.nn.LSTM(dropout=...)``."""
    _check_kind(kind)
    if state is not None and len(state) != len(params):
        raise ValueError(f"state has {len(state)} layer(s) but params have {len(params)}")
    new_state = []
    keyed = key is not None and dropout_active(dropout_rate, train)
    keys = rng.split(key, len(params)) if keyed else [None] * len(params)
    for i, layer in enumerate(params):
        if i > 0:
            x = dropout(x, dropout_rate, key=keys[i], train=train)
        module = _template(kind, layer["weight_ih"].shape[1], layer["weight_hh"].shape[1])
        args = (x,) if state is None else (x, state[i])
        x, layer_state = functional_call(module, _torch_names(layer), args)
        new_state.append(layer_state)
    return x, new_state


def rnn(params, x, state=None, **kwargs):
    """Elman (tanh) RNN stack, see :func:`recurrent`."""
    return recurrent("rnn", params, x, state, **kwargs)


def lstm(params, x, state=None, **kwargs):
    """LSTM stack, see :func:`recurrent`."""
    return recurrent("lstm", params, x, state, **kwargs)


def gru(params, x, state=None, **kwargs):
    """GRU stack, see :func:`recurrent`."""
    return recurrent("gru", params, x, state, **kwargs)
