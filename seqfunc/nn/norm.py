"""Layer normalisation over the last axis."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def init_layer_norm(dim: int) -> dict:
    return {"weight": torch.ones(dim), "bias": torch.zeros(dim)}


def layer_norm(params: dict, x: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """``x``: ``(..., dim)`` -> ``(..., dim)``."""
    return F.layer_norm(x, params["weight"].shape, params["weight"], params["bias"], eps)
