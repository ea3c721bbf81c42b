"""Position-wise feed-forward blocks: linear -> activation -> dropout -> linear, and the gated
SwiGLU of Llama-family models: ``down(silu(gate(x)) * up(x))``."""

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
    #: GPT-2's tanh approximation ("gelu_new" in Hugging Face configs)
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
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


def init_swiglu(
    key: rng.KeyArray, d_model: int, d_ff: int, *, bias: bool = False, std: float = 0.02
) -> dict:
    """``{"gate", "up": (d_ff, d_model), "down": (d_model, d_ff)}`` weights drawn from
    N(0, std^2) (Llama's initialisation), with zero biases when ``bias``."""
    k_gate, k_up, k_down = rng.split(key, 3)

    def dense(k, d_in, d_out):
        params = {"weight": rng.normal(k, (d_out, d_in), std=std)}
        if bias:
            params["bias"] = torch.zeros(d_out)
        return params

    return {
        "gate": dense(k_gate, d_model, d_ff),
        "up": dense(k_up, d_model, d_ff),
        "down": dense(k_down, d_ff, d_model),
    }


def swiglu(params: dict, x: torch.Tensor) -> torch.Tensor:
    """``x (..., d_model)`` -> ``(..., d_model)``: ``down(silu(gate(x)) * up(x))``."""
    return linear(params["down"], F.silu(linear(params["gate"], x)) * linear(params["up"], x))
