"""Scaled dot-product attention through torch's fused ``F.scaled_dot_product_attention``."""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from seqfunc.nn.attention_kernels.base import (
    AttentionKernel, check_mask, default_scale, masked_softmax, with_causal,
)


@attrs.frozen
class DotProduct(AttentionKernel):
    """``softmax(q k^T / sqrt(d)) v`` (eq. 2 of seed 002). Accepts any mask broadcastable to
    ``(b, h, tq, tk)``. torch picks its kernel: with no mask and ``causal`` it may use a
    flash-style kernel whose memory is linear in the length; with a mask tensor, the
    ``(tq, tk)`` scores are built."""

    name = "dot"

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        mask = check_mask(mask, q, k)
        if causal and mask is None:
            if q.shape[2] == k.shape[2]:
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        mask = with_causal(mask, q.shape[2], k.shape[2], causal, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = with_causal(check_mask(mask, q, k), q.shape[2], k.shape[2], causal, q.device)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * default_scale(q.shape[-1])
        return masked_softmax(scores, mask)
