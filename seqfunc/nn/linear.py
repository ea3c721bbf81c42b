"""Dense layer: ``y = x W^T + b`` with torch's weight layout ``(d_out, d_in)``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from seqfunc import rng


def init_linear(key: rng.KeyArray, d_in: int, d_out: int, *, bias: bool = True) -> dict:
    """Xavier-uniform weight ``(d_out, d_in)`` and zero bias ``(d_out,)``."""
    bound = math.sqrt(6.0 / (d_in + d_out))
    params = {"weight": rng.uniform(key, (d_out, d_in), low=-bound, high=bound)}
    if bias:
        params["bias"] = torch.zeros(d_out)
    return params


def linear(params: dict, x: torch.Tensor) -> torch.Tensor:
    """``x``: ``(..., d_in)`` -> ``(..., d_out)``."""
    return F.linear(x, params["weight"], params.get("bias"))
