"""Grouped-query attention (GQA, Ainslie et al. 2023): ``heads`` query heads share
``kv_heads`` key/value heads, ``heads / kv_heads`` queries per group. ``kv_heads == heads`` is
multi-head attention; ``kv_heads == 1`` is multi-query attention.

Parameters keep the four projections apart (``q: (heads * d, d_model)``, ``k``/``v``:
``(kv_heads * d, d_model)``, ``out: (d_model, heads * d)``), each with an optional bias, the
layout of Llama, Mistral and Qwen2. A KV cache stores the ``kv_heads`` heads only; they are
repeated to the query heads where the scores are taken (:func:`expand_kv`).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat

from seqfunc import rng
from seqfunc.nn.attention_kernels import attention_kernel
from seqfunc.nn.linear import linear
from seqfunc.nn.rotary import apply_rotary

#: torch's fused kernel eagerly; written out (and fused by inductor) when compiled for the CPU
_DOT = attention_kernel("dot")


def init_grouped_query_attention(
    key: rng.KeyArray,
    d_model: int,
    *,
    heads: int,
    kv_heads: int,
    head_dim: int,
    qkv_bias: bool = False,
    out_bias: bool = False,
    std: float = 0.02,
) -> dict:
    """``{"q", "k", "v", "out"}`` dense layers, weights N(0, std^2), biases 0."""
    if heads % kv_heads:
        raise ValueError(f"heads={heads} is not a multiple of kv_heads={kv_heads}")
    k_q, k_k, k_v, k_out = rng.split(key, 4)

    def dense(k, d_in, d_out, bias):
        params = {"weight": rng.normal(k, (d_out, d_in), std=std)}
        if bias:
            params["bias"] = torch.zeros(d_out)
        return params

    return {
        "q": dense(k_q, d_model, heads * head_dim, qkv_bias),
        "k": dense(k_k, d_model, kv_heads * head_dim, qkv_bias),
        "v": dense(k_v, d_model, kv_heads * head_dim, qkv_bias),
        "out": dense(k_out, heads * head_dim, d_model, out_bias),
    }


def project_grouped(
    params: dict, x: torch.Tensor, *, heads: int, kv_heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x (b, t, d_model)`` -> ``q (b, heads, t, d)``, ``k``, ``v (b, kv_heads, t, d)``."""
    split = "b t (h d) -> b h t d"
    return (
        rearrange(linear(params["q"], x), split, h=heads),
        rearrange(linear(params["k"], x), split, h=kv_heads),
        rearrange(linear(params["v"], x), split, h=kv_heads),
    )


def expand_kv(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(b, kv_heads, t, d)`` -> ``(b, heads, t, d)``: group ``g``'s head serves query heads
    ``g * r .. g * r + r - 1`` (``r = heads / kv_heads``)."""
    groups = x.shape[1]
    if groups == heads:
        return x
    return repeat(x, "b g t d -> b (g r) t d", r=heads // groups)


def grouped_attention_mix(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    causal: bool = False,
) -> torch.Tensor:
    """``q (b, heads, tq, d)``, ``k``/``v`` ``(b, kv_heads, tk, d)`` -> ``(b, tq, heads * d)``:
    scaled dot-product attention of each query head with its group's keys and values."""
    heads = q.shape[1]
    out = _DOT.apply({}, q, expand_kv(k, heads), expand_kv(v, heads), mask, causal=causal)
    return rearrange(out, "b h t d -> b t (h d)")


def grouped_query_attention(
    params: dict,
    x: torch.Tensor,
    *,
    heads: int,
    kv_heads: int,
    rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
    mask: torch.Tensor | None = None,
    causal: bool = False,
) -> torch.Tensor:
    """Self-attention of ``x (b, t, d_model)`` -> ``(b, t, d_model)``. ``rotary``: the
    ``(cos, sin)`` of :func:`seqfunc.nn.rotary.rotary_angles` for the ``t`` positions,
    applied to queries and keys."""
    q, k, v = project_grouped(params, x, heads=heads, kv_heads=kv_heads)
    if rotary is not None:
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
    return linear(params["out"], grouped_attention_mix(q, k, v, mask, causal=causal))
