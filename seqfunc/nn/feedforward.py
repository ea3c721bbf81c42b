"""Position-wise feed-forward block: linear -> activation -> dropout -> linear."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from seqfunc import rng
from seqfunc.nn.dropout import dropout
from seqfunc.nn.linear import init_linear, linear

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
}


def init_feed_forward(key: rng.KeyArray, d_model: int, d_ff: int, *, init: str = "xavier") -> dict:
    """``init``: the linear layers' initialisation (see :func:`~seqfunc.nn.linear.init_linear`)."""
    k1, k2 = rng.split(key)
    return {
        "up": init_linear(k1, d_model, d_ff, init=init),
        "down": init_linear(k2, d_ff, d_model, init=init),
    }


def feed_forward(
    params: dict,
    x: torch.Tensor,
    *,
    activation: str = "relu",
    dropout_rate: float = 0.0,
    key: rng.KeyArray | None = None,
    train: bool = False,
) -> torch.Tensor:
    """``x``: ``(..., d_model)`` -> ``(..., d_model)``."""
    hidden = ACTIVATIONS[activation](linear(params["up"], x))
    hidden = dropout(hidden, dropout_rate, key=key, train=train)
    return linear(params["down"], hidden)
