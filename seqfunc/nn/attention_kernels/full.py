"""Softmax attention written out: the ``(tq, tk)`` weight matrix built in memory (the
reference that the other kernels are checked against)."""

from __future__ import annotations

import attrs
import torch

from seqfunc.nn.attention_kernels.base import (
    AttentionKernel,
    check_mask,
    default_scale,
    masked_softmax,
    with_causal,
)


@attrs.frozen
class FullSoftmax(AttentionKernel):
    """``softmax(q k^T / sqrt(d)) v`` with the weights materialised: time and memory grow as
    ``tq * tk``. Accepts any mask broadcastable to ``(b, h, tq, tk)``."""

    name = "full"

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = with_causal(check_mask(mask, q, k), q.shape[2], k.shape[2], causal, q.device)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * default_scale(q.shape[-1])
        return masked_softmax(scores, mask)

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        return torch.einsum("bhqk,bhkd->bhqd", self.weights(params, q, k, mask, causal=causal), v)
