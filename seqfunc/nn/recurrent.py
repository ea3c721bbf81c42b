"""Recurrent layers over our parameter pytree, run by torch's fused kernels.

``torch.nn.LSTM`` / ``torch.nn.GRU`` call one fused ``_VF`` kernel per layer (and cuDNN on
GPUs); re-writing the cell in Python would be several times slower. So the parameters live in
our pytree and the kernel is borrowed through :func:`torch.func.functional_call` on a
parameter-less template module (built once per shape, on the ``meta`` device)::

    params = init_lstm(key, input_size=32, hidden_size=64, layers=2)
    out, state = lstm(params, x)                       # x (b, t, 32) -> out (b, t, 64)
    out2, state = lstm(params, x_next, state)          # carry (h, c) across chunks

Layers run one at a time so that dropout between them takes an explicit key (torch's own
inter-layer dropout would draw from the global RNG). Parameter names follow torch
(``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``; gates ``i, f, g, o`` stacked), so a
torch state dict maps over directly. Reused by any model with a recurrent encoder/decoder
(language models, seq2seq RNNs).
"""

from __future__ import annotations

import functools
import math

import torch
from torch.func import functional_call

from seqfunc import rng
from seqfunc.nn.dropout import dropout

_GATES = {"lstm": 4, "gru": 3}


@functools.lru_cache(maxsize=None)
def _template(kind: str, input_size: int, hidden_size: int) -> torch.nn.Module:
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    return cls(input_size, hidden_size, num_layers=1, batch_first=True, device="meta")


def _torch_names(layer: dict) -> dict:
    return {f"{name}_l0": value for name, value in layer.items()}


def init_recurrent(
    key: rng.KeyArray, kind: str, input_size: int, hidden_size: int, layers: int = 1
) -> list[dict]:
    """Per layer ``{"weight_ih": (G h, in), "weight_hh": (G h, h), "bias_ih": (G h,),
    "bias_hh": (G h,)}`` with ``G`` = 4 (LSTM) or 3 (GRU), all U(-1/sqrt(h), 1/sqrt(h)) as torch."""
    gates, bound = _GATES[kind] * hidden_size, 1.0 / math.sqrt(hidden_size)
    params = []
    for i, k in enumerate(rng.split(key, layers)):
        k1, k2, k3, k4 = rng.split(k, 4)
        d_in = input_size if i == 0 else hidden_size
        draw = lambda kk, shape: rng.uniform(kk, shape, low=-bound, high=bound)
        params.append({
            "weight_ih": draw(k1, (gates, d_in)), "weight_hh": draw(k2, (gates, hidden_size)),
            "bias_ih": draw(k3, (gates,)), "bias_hh": draw(k4, (gates,)),
        })
    return params


def init_lstm(key: rng.KeyArray, input_size: int, hidden_size: int, layers: int = 1) -> list[dict]:
    return init_recurrent(key, "lstm", input_size, hidden_size, layers)


def recurrent(
    kind: str, params: list[dict], x: torch.Tensor, state=None, *, dropout_rate: float = 0.0,
    key: rng.KeyArray | None = None, train: bool = False,
):
    """``x (b, t, in)`` -> ``(out (b, t, h), state)``; ``state`` is per layer ``(h, c)`` for an
    LSTM (each ``(1, b, h)``) or ``h`` for a GRU, None for zeros. Dropout (rate, key) applies
    between layers, as ``torch.nn.LSTM(dropout=...)``."""
    new_state = []
    keys = rng.split(key, len(params)) if (key is not None and train and dropout_rate) else [None] * len(params)
    for i, layer in enumerate(params):
        if i > 0:
            x = dropout(x, dropout_rate, key=keys[i], train=train)
        module = _template(kind, layer["weight_ih"].shape[1], layer["weight_hh"].shape[1])
        args = (x,) if state is None else (x, state[i])
        x, layer_state = functional_call(module, _torch_names(layer), args)
        new_state.append(layer_state)
    return x, new_state


def lstm(params, x, state=None, **kwargs):
    """LSTM stack, see :func:`recurrent`."""
    return recurrent("lstm", params, x, state, **kwargs)


def gru(params, x, state=None, **kwargs):
    """GRU stack, see :func:`recurrent`."""
    return recurrent("gru", params, x, state, **kwargs)
