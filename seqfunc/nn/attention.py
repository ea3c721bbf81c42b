"""Multi-head attention with einops reshaping and boolean masks (True = may attend).

The score-and-mix step is an interchangeable kernel (:mod:`seqfunc.nn.attention_kernels`):
``kernel="dot"`` (the default, torch's fused kernel), ``"additive"``, ``"simple"``,
``"linear"``, ``"window"``, ``"chunked"``, ``"full"``, or a dict with ``kind`` and options.
:func:`record_attention` collects every layer's attention weights for inspection.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from einops import rearrange

from seqfunc import rng
from seqfunc.nn.attention_kernels import attention_kernel
from seqfunc.nn.linear import init_linear, linear

#: Lists that :func:`record_attention` is filling (empty outside it: the check is a no-op).
_RECORDERS: list[list[dict]] = []


def dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product attention: the ``"dot"`` kernel.

    ``q``: ``(b, h, tq, d)``, ``k``/``v``: ``(b, h, tk, d)``, ``mask`` broadcastable to
    ``(b, h, tq, tk)`` -> ``(b, h, tq, d)``. A query whose keys are all masked gets zeros.
    """
    return attention_kernel("dot").apply({}, q, k, v, mask)


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The softmax weights ``(b, h, tq, tk)`` that :func:`dot_product_attention` applies."""
    return attention_kernel("dot").weights({}, q, k, mask)


def init_multi_head_attention(
    key: rng.KeyArray, d_model: int, *, cross: bool = False, kernel: Any = "dot",
    heads: int | None = None,
) -> dict:
    """Self-attention packs the projections as ``qkv: (3 d, d)`` (one matmul, the layout of
    ``torch.nn.MultiheadAttention.in_proj_weight``); cross-attention keeps ``q: (d, d)`` apart
    from ``kv: (2 d, d)`` since they read different sequences.

    A kernel with parameters (additive) adds them under ``"kernel"`` (it needs ``heads``); a
    parameter-free kernel (simple) has no projections: ``{}``."""
    kernel = attention_kernel(kernel)
    if not kernel.projects:
        return {}
    k1, k2, k3 = rng.split(key, 3)
    if cross:
        params = {
            "q": init_linear(k1, d_model, d_model),
            "kv": init_linear(k2, d_model, 2 * d_model),
            "out": init_linear(k3, d_model, d_model),
        }
    else:
        params = {"qkv": init_linear(k1, d_model, 3 * d_model), "out": init_linear(k3, d_model, d_model)}
    if heads is None:
        kernel_params = kernel.init(rng.fold_in(key, 3), 1, d_model)
        if kernel_params:
            raise ValueError(f"attention kernel {kernel.name!r} has parameters: pass heads=")
    else:
        kernel_params = kernel.init(rng.fold_in(key, 3), heads, d_model // heads)
    if kernel_params:
        params["kernel"] = kernel_params
    return params


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


def split_heads(
    x: torch.Tensor, context: torch.Tensor | None, heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Parameter-free attention: ``q`` from ``x``, ``k = v`` from ``context`` (``x`` if
    None), split into heads ``(b, h, t, d / h)`` without projecting."""
    split = "b t (h d) -> b h t d"
    q = rearrange(x, split, h=heads)
    kv = q if context is None else rearrange(context, split, h=heads)
    return q, kv, kv


def multi_head_attention(
    params: dict,
    x: torch.Tensor,
    context: torch.Tensor | None = None,
    *,
    heads: int,
    mask: torch.Tensor | None = None,
    kernel: Any = "dot",
    causal: bool = False,
) -> torch.Tensor:
    """``x``: ``(b, tq, d)``; ``context``: ``(b, tk, d)`` for cross-attention -> ``(b, tq, d)``.

    ``mask``: boolean, True = may attend, broadcastable to ``(b, h, tq, tk)``; ``causal``
    adds the causal mask without building it. ``kernel``: a name, a ``{"kind": ...}`` dict or
    an :class:`~seqfunc.nn.attention_kernels.AttentionKernel` (build it once, outside
    compiled code)."""
    kernel = attention_kernel(kernel)
    if kernel.projects:
        q, k, v = project_heads(params, x, context, heads)
    else:
        q, k, v = split_heads(x, context, heads)
    kernel_params = params.get("kernel", {})
    if _RECORDERS:
        weights = kernel.weights(kernel_params, q, k, mask, causal=causal).detach()
        for record in _RECORDERS:
            record.append({"kind": "self" if context is None else "cross", "weights": weights})
    out = rearrange(kernel.apply(kernel_params, q, k, v, mask, causal=causal), "b h t d -> b t (h d)")
    return linear(params["out"], out) if kernel.projects else out


@contextlib.contextmanager
def record_attention() -> Iterator[list[dict]]:
    """Collect the attention weights of every :func:`multi_head_attention` call made inside
    the block, in call order, as ``{"kind": "self" | "cross", "weights": (b, h, tq, tk)}``.

    For inspection (eager mode): ``with record_attention() as maps: model.apply(...)``."""
    record: list[dict] = []
    _RECORDERS.append(record)
    try:
        yield record
    finally:
        _RECORDERS.remove(record)
