"""Simple self-attention (assignment 004, question 4): no parameters, no scaling.

The layer does not project: queries, keys and values are the inputs themselves (split into
heads), ``y = softmax(x x^T) x``, and there is no output projection.
"""

from __future__ import annotations

import attrs
import torch

from seqfunc.nn.attention_kernels.base import (
    AttentionKernel,
    check_mask,
    masked_softmax,
    with_causal,
)
from seqfunc.nn.attention_kernels.dot import broadcast_mix, broadcast_pays, broadcast_scores


@attrs.frozen
class Simple(AttentionKernel):
    """``softmax(q k^T) v`` with ``q = k = v = x`` per head. Accepts any mask broadcastable to
    ``(b, h, tq, tk)``."""

    name = "simple"
    projects = False

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = with_causal(check_mask(mask, q, k), q.shape[2], k.shape[2], causal, q.device)
        if broadcast_pays(q, k):  # tiny heads, compiled for the CPU: loops instead of bmm
            return masked_softmax(broadcast_scores(q, k), mask)
        return masked_softmax(torch.einsum("bhqd,bhkd->bhqk", q, k), mask)

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        weights = self.weights(params, q, k, mask, causal=causal)
        if broadcast_pays(q, k):
            return broadcast_mix(weights, v)
        return torch.einsum("bhqk,bhkd->bhqd", weights, v)
