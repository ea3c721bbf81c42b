"""Multi-head attention with einops reshaping and boolean masks (True = may attend)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from seqfunc import rng
from seqfunc.nn.linear import init_linear, linear


def dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product attention through torch's fused kernel.

    ``q``: ``(b, h, tq, d)``, ``k``/``v``: ``(b, h, tk, d)``, ``mask`` broadcastable to
    ``(b, h, tq, tk)`` -> ``(b, h, tq, d)``. A query whose keys are all masked gets zeros.
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The softmax weights ``(b, h, tq, tk)`` that :func:`dot_product_attention` applies."""
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.nan_to_num(weights, nan=0.0)  # fully masked rows attend to nothing


def init_multi_head_attention(
    key: rng.KeyArray, d_model: int, *, cross: bool = False
) -> dict:
    """Self-attention packs the projections as ``qkv: (3 d, d)`` (one matmul, the layout of
    ``torch.nn.MultiheadAttention.in_proj_weight``); cross-attention keeps ``q: (d, d)`` apart
    from ``kv: (2 d, d)`` since they read different sequences."""
    k1, k2, k3 = rng.split(key, 3)
    if cross:
        return {
            "q": init_linear(k1, d_model, d_model),
            "kv": init_linear(k2, d_model, 2 * d_model),
            "out": init_linear(k3, d_model, d_model),
        }
    return {"qkv": init_linear(k1, d_model, 3 * d_model), "out": init_linear(k3, d_model, d_model)}


def project_heads(
    params: dict, x: torch.Tensor, context: torch.Tensor | None, heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries from ``x`` ``(b, tq, d)``, keys/values from ``context`` (``x`` if None), each
    split into heads: ``(b, h, t, d / h)``."""
    if "qkv" in params:
        if context is not None:
            raise ValueError("self-attention params (qkv) were given a separate context")
        q, k, v = linear(params["qkv"], x).chunk(3, dim=-1)
    else:
        if context is None:
            raise ValueError("cross-attention params (q, kv) need a context sequence")
        q = linear(params["q"], x)
        k, v = linear(params["kv"], context).chunk(2, dim=-1)
    split = "b t (h d) -> b h t d"
    return (
        rearrange(q, split, h=heads),
        rearrange(k, split, h=heads),
        rearrange(v, split, h=heads),
    )


def multi_head_attention(
    params: dict,
    x: torch.Tensor,
    context: torch.Tensor | None = None,
    *,
    heads: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x``: ``(b, tq, d)``; ``context``: ``(b, tk, d)`` for cross-attention -> ``(b, tq, d)``."""
    q, k, v = project_heads(params, x, context, heads)
    out = dot_product_attention(q, k, v, mask)
    return linear(params["out"], rearrange(out, "b h t d -> b t (h d)"))
