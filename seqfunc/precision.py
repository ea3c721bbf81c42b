"""Compute precision of a step: the parameters stay float32, the loss computes in a lower one.

    loss_fn = in_precision(loss_fn, "bf16")   # loss_fn(params, batch, key) -> (loss, aux)

The wrapped loss casts its floating parameters to the compute dtype (one cast of the flat
vector in :func:`seqfunc.train.make_step`'s step), so the forward and the backward run in
that dtype, and returns the loss and the aux metrics in float32. The gradient reaches the
float32 parameters through the cast, so it is float32 too: the optimizer and its state never
see the lower precision. The cross-entropy upcasts the logits itself
(:func:`seqfunc.metrics.cross_entropy`), so the loss and its reductions are float32.

fp16's range is narrow: its gradients need a loss scale
(:func:`seqfunc.loss_scale.dynamic_loss_scale`); bf16 has float32's range and needs none.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from seqfunc.errors import ConfigError
from seqfunc.tree import tree_map

#: ``-t precision=NAME``: the dtype the forward and backward compute in
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def compute_dtype(precision: str | torch.dtype) -> torch.dtype:
    """The dtype of a precision name (``fp32``, ``bf16``, ``fp16``) or the dtype itself."""
    if isinstance(precision, torch.dtype):
        return precision
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: must be one of {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def needs_loss_scale(precision: str | torch.dtype) -> bool:
    """Whether gradients in this precision underflow without a loss scale (fp16)."""
    return compute_dtype(precision) == torch.float16


def cast_floating(tree, dtype: torch.dtype):
    """Every floating-point tensor leaf of ``tree`` (a tensor is a tree of one) in ``dtype``;
    integer leaves and other values as they are."""
    cast = lambda x: x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
    return tree_map(cast, tree)


def in_precision(loss_fn: Callable, precision: str | torch.dtype) -> Callable:
    """``loss_fn`` run on its parameters cast to ``precision``'s dtype, its loss and aux
    metrics returned in float32; ``loss_fn`` itself for fp32. Arguments after ``key`` go to
    ``loss_fn`` as they are."""
    dtype = compute_dtype(precision)
    if dtype == torch.float32:
        return loss_fn

    def loss(params, batch, key, *rest):
        value, aux = loss_fn(cast_floating(params, dtype), batch, key, *rest)
        return value.float(), cast_floating(aux, torch.float32)

    return loss
