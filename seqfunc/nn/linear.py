"""Dense layer: ``y = x W^T + b`` with torch's weight layout ``(d_out, d_in)``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from seqfunc import rng

#: Weight initialisations :func:`init_linear` knows.
LINEAR_INITS = ("xavier", "torch")


def init_linear(
    key: rng.KeyArray, d_in: int, d_out: int, *, bias: bool = True, init: str = "xavier"
) -> dict:
    """Weight ``(d_out, d_in)`` and bias ``(d_out,)``.

    ``init="xavier"``: weight U(+-sqrt(6 / (d_in + d_out))), bias 0.
    ``init="torch"``: ``torch.nn.Linear``'s own (kaiming-uniform with a = sqrt(5)): weight and
    bias both U(+-1 / sqrt(d_in))."""
    if init not in LINEAR_INITS:
        raise ValueError(f"init_linear: init={init!r}; expected one of {', '.join(LINEAR_INITS)}")
    k_weight, k_bias = rng.split(key)
    if init == "xavier":
        bound = math.sqrt(6.0 / (d_in + d_out))
        params = {"weight": rng.uniform(key, (d_out, d_in), low=-bound, high=bound)}
        if bias:
            params["bias"] = torch.zeros(d_out)
        return params
    bound = 1.0 / math.sqrt(d_in)
    params = {"weight": rng.uniform(k_weight, (d_out, d_in), low=-bound, high=bound)}
    if bias:
        params["bias"] = rng.uniform(k_bias, (d_out,), low=-bound, high=bound)
    return params


def linear(params: dict, x: torch.Tensor) -> torch.Tensor:
    """``x``: ``(..., d_in)`` -> ``(..., d_out)``."""
    return F.linear(x, params["weight"], params.get("bias"))
