"""Normalisation over the last axis: layer norm and RMS norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def init_layer_norm(dim: int) -> dict:
    return {"weight": torch.ones(dim), "bias": torch.zeros(dim)}


def layer_norm(params: dict, x: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """``x``: ``(..., dim)`` -> ``(..., dim)``."""
    return F.layer_norm(x, params["weight"].shape, params["weight"], params["bias"], eps)


def init_rms_norm(dim: int) -> dict:
    return {"weight": torch.ones(dim)}


def rms_norm(params: dict, x: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """``x (..., dim)`` divided by its root mean square, then scaled: ``(..., dim)``.

    Computed in fp32 (or wider) and cast back before the scale, as Llama's reference does, so
    bf16 inputs lose no precision in the reduction."""
    wide = x.to(torch.promote_types(x.dtype, torch.float32))
    normed = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)
    return params["weight"] * normed.to(x.dtype)
