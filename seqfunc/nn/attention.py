"""Multi-head attention with einops reshaping and boolean masks (True = may attend).

The score-and-mix step is an interchangeable kernel (:mod:`seqfunc.nn.attention_kernels`):
``kernel="dot"`` (the default, torch's fused kernel), ``"additive"``, ``"simple"``,
``"linear"``, ``"window"``, ``"chunked"``, ``"full"``, or a dict with ``kind`` and options.
:func:`record_attention` collects every layer's attention weights for inspection.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from einops import rearrange

from seqfunc import rng
from seqfunc.nn.attention_kernels import attention_kernel
from seqfunc.nn.dropout import active as dropout_active
from seqfunc.nn.dropout import dropout
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
    key: rng.KeyArray,
    d_model: int,
    *,
    cross: bool = False,
    kernel: Any = "dot",
    heads: int | None = None,
    init: str = "xavier",
) -> dict:
    """Self-attention packs the projections as ``qkv: (3 d, d)`` (one matmul, the layout of
    ``torch.nn.MultiheadAttention.in_proj_weight``); cross-attention keeps ``q: (d, d)`` apart
    from ``kv: (2 d, d)`` since they read different sequences.

    ``init="xavier"``: every projection xavier-uniform, biases 0. ``init="torch"``:
    ``torch.nn.MultiheadAttention``'s own: the packed in-projection xavier-uniform as one
    ``(3 d, d)`` matrix (so ``q`` and ``kv`` share its bound), biases 0, and the output
    projection ``torch.nn.Linear``'s default weight U(+-1 / sqrt(d)) with bias 0.

    A kernel with parameters (additive) adds them under ``"kernel"`` (it needs ``heads``); a
    parameter-free kernel (simple) has no projections: ``{}``."""
    kernel = attention_kernel(kernel)
    if not kernel.projects:
        return {}
    k1, k2, k3 = rng.split(key, 3)
    if init == "torch":

        def in_proj(k, rows):
            bound = math.sqrt(6.0 / (d_model + 3 * d_model))
            return {
                "weight": rng.uniform(k, (rows, d_model), low=-bound, high=bound),
                "bias": torch.zeros(rows),
            }

        out = {
            "weight": init_linear(k3, d_model, d_model, init="torch")["weight"],
            "bias": torch.zeros(d_model),
        }
    else:
        in_proj = lambda k, rows: init_linear(k, d_model, rows, init=init)
        out = init_linear(k3, d_model, d_model, init=init)
    if cross:
        params = {"q": in_proj(k1, d_model), "kv": in_proj(k2, 2 * d_model), "out": out}
    else:
        params = {"qkv": in_proj(k1, 3 * d_model), "out": out}
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
    dropout_rate: float = 0.0,
    key: rng.KeyArray | None = None,
    train: bool = False,
) -> torch.Tensor:
    """``x``: ``(b, tq, d)``; ``context``: ``(b, tk, d)`` for cross-attention -> ``(b, tq, d)``.

    ``dropout_rate`` (with ``key``, when ``train``): dropout on the attention weights, as
    ``torch.nn.MultiheadAttention(dropout=...)``; the weights are then materialised.

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
    if dropout_active(dropout_rate, train):
        weights = kernel.weights(kernel_params, q, k, mask, causal=causal)
        mixed = dropout(weights, dropout_rate, key=key, train=train) @ v
    else:
        mixed = kernel.apply(kernel_params, q, k, v, mask, causal=causal)
    out = rearrange(mixed, "b h t d -> b t (h d)")
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
