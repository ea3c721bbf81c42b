"""Scaled dot-product attention through torch's fused ``F.scaled_dot_product_attention``
(written out as plain ops under torch.compile on the CPU, where inductor fuses those better)."""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from seqfunc.nn.attention_kernels.base import (
    AttentionKernel, check_mask, default_scale, masked_softmax, with_causal,
)


#: Under torch.compile on the CPU, up to this many keys the scores are written out (two
#: batched matmuls and a softmax), which inductor fuses into fewer, faster loops than it gets
#: around torch's fused kernel. Eager mode keeps the fused kernel: eager CPU ``bmm`` on many
#: tiny matrices loops over the batch and is slower than it.
COMPILED_CPU_WRITTEN_OUT_MAX_KEYS = 64


def softmax_attention(q, k, v, mask=None):
    """``softmax(q k^T / sqrt(d)) v`` in plain ops; a query with no allowed key gets zeros
    (and zero gradients: the masked scores take none)."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * default_scale(q.shape[-1])
    if mask is None:
        return torch.matmul(torch.softmax(scores, dim=-1), v)
    weights = torch.softmax(torch.where(mask, scores, float("-inf")), dim=-1)
    return torch.matmul(weights.nan_to_num(nan=0.0), v)


@attrs.frozen
class DotProduct(AttentionKernel):
    """``softmax(q k^T / sqrt(d)) v`` (eq. 2 of seed 002). Accepts any mask broadcastable to
    ``(b, h, tq, tk)``. Compiled for the CPU with at most
    :data:`COMPILED_CPU_WRITTEN_OUT_MAX_KEYS` keys it is :func:`softmax_attention`; otherwise
    torch picks its fused kernel: with no mask and ``causal`` it may use a flash-style kernel
    whose memory is linear in the length; with a mask tensor, the ``(tq, tk)`` scores are
    built."""

    name = "dot"

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        mask = check_mask(mask, q, k)
        if (
            torch.compiler.is_compiling() and q.device.type == "cpu"
            and k.shape[2] <= COMPILED_CPU_WRITTEN_OUT_MAX_KEYS
        ):
            mask = with_causal(mask, q.shape[2], k.shape[2], causal, q.device)
            return softmax_attention(q, k, v, mask)
        if causal and mask is None:
            if q.shape[2] == k.shape[2]:
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        mask = with_causal(mask, q.shape[2], k.shape[2], causal, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = with_causal(check_mask(mask, q, k), q.shape[2], k.shape[2], causal, q.device)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * default_scale(q.shape[-1])
        return masked_softmax(scores, mask)
