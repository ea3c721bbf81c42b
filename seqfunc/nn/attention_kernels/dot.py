"""Scaled dot-product attention through torch's fused ``F.scaled_dot_product_attention``
(written out as plain ops under torch.compile on the CPU, where inductor fuses those better)."""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from seqfunc.nn.attention_kernels.base import (
    AttentionKernel,
    check_mask,
    default_scale,
    masked_softmax,
    with_causal,
)

#: Under torch.compile on the CPU, up to this many keys (or for a single query, a decoding
#: step, whatever the keys) the scores are written out (two batched matmuls and a softmax),
#: which inductor fuses into fewer, faster loops than it gets around torch's fused kernel.
#: Eager mode keeps the fused kernel: eager CPU ``bmm`` on many tiny matrices loops over the
#: batch and is slower than it.
COMPILED_CPU_WRITTEN_OUT_MAX_KEYS = 64

#: ... and when each head's product is tiny, both products are written as
#: broadcast-multiply-and-sum: inductor's fused loops beat ``bmm``'s per-matrix cost there.
#: Where that pays depends on the vector width of the code inductor emits, so the limits are
#: per width in bits: ``(largest tq * tk * d, d a multiple of)``. Measured forward + backward
#: on ~500 heads, one thread, torch 2.13, 2-core AMD EPYCs:
#: 512 bits: 11 x 11 x 16 1.4x, 6 x 6 x 16 2.2x; 16 x 16 x 16 0.8x, d = 8 0.1x.
#: 256 bits: 6 x 6 x 8 3.3x, 6 x 6 x 64 2.7x, 16 x 16 x 16 1.3x, 16 x 16 x 32 1.3x;
#: 24 x 24 x 16 0.9x.
#: Other widths take the 512-bit limits, the narrower ones.
COMPILED_CPU_BROADCAST_LIMITS = {512: (2048, 16), 256: (8192, 8)}


def inductor_vector_bits() -> int:
    """The vector width, in bits, of the CPU code inductor emits on this machine (0 where it
    emits none). It is inductor's choice, not ATen's (``torch.backends.cpu.get_cpu_capability``):
    the two can differ on one machine, and inductor's decides what the compiled loops run."""
    try:
        from torch._inductor import cpu_vec_isa

        return int(cpu_vec_isa.pick_vec_isa().bit_width())
    except Exception:  # an inductor without this module, or a CPU it cannot vectorize for
        return 0


@torch.compiler.assume_constant_result
def broadcast_limits() -> tuple[int, int]:
    """This CPU's ``(largest tq * tk * d, d a multiple of)`` for the broadcast form.

    Evaluated once while tracing and put in the graph as a constant: dynamo cannot trace the
    query of the CPU inside, and a call it cannot trace breaks the compiled step into
    pieces, which run slower than the eager step."""
    return COMPILED_CPU_BROADCAST_LIMITS.get(
        inductor_vector_bits(), COMPILED_CPU_BROADCAST_LIMITS[512]
    )


def broadcast_pays(q: torch.Tensor, k: torch.Tensor) -> bool:
    """Whether, compiled for the CPU, the products of ``q (b, h, tq, d)`` with
    ``k (b, h, tk, d)`` are faster as broadcast multiply-and-sum loops than as ``bmm``
    (:func:`broadcast_limits`)."""
    if not (torch.compiler.is_compiling() and q.device.type == "cpu"):
        return False
    tq, tk, d = q.shape[2], k.shape[2], q.shape[3]
    max_product, lanes = broadcast_limits()
    return d % lanes == 0 and tq * tk * d <= max_product


def broadcast_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``q k^T`` as ``(b, h, tq, 1, d) * (b, h, 1, tk, d)`` summed over ``d``: ``(b, h, tq, tk)``."""
    return (q.unsqueeze(3) * k.unsqueeze(2)).sum(-1)


def broadcast_mix(weights: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``weights (b, h, tq, tk) @ v (b, h, tk, dv)`` as a broadcast multiply-and-sum."""
    return (weights.unsqueeze(-1) * v.unsqueeze(2)).sum(3)


def softmax_attention(q, k, v, mask=None, *, broadcast=False, empty_rows=True):
    """``softmax(q k^T / sqrt(d)) v`` in plain ops; a query with no allowed key gets zeros
    (and zero gradients: the masked scores take none). ``empty_rows=False`` promises that
    every query may attend some key and skips that clean-up. ``broadcast`` writes both products
    as broadcast-multiply-and-sum, which inductor fuses into loops instead of batched
    matmuls (compiled, the ``(b, h, tq, tk, d)`` product is never stored; eagerly it is)."""
    if broadcast:
        scores = broadcast_scores(q, k)
    else:
        scores = torch.matmul(q, k.transpose(-2, -1))
    scores = scores * default_scale(q.shape[-1])
    if mask is not None:
        scores = torch.where(mask, scores, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None and empty_rows:
        weights = weights.nan_to_num(nan=0.0)
    if broadcast:
        return broadcast_mix(weights, v)
    return torch.matmul(weights, v)


@attrs.frozen
class DotProduct(AttentionKernel):
    """``softmax(q k^T / sqrt(d)) v`` (eq. 2 of assignment 002). Accepts any mask broadcastable to
    ``(b, h, tq, tk)``. Compiled for the CPU with at most
    :data:`COMPILED_CPU_WRITTEN_OUT_MAX_KEYS` keys or one query it is
    :func:`softmax_attention` (in its broadcast form for tiny heads,
    :func:`broadcast_limits`); otherwise
    torch picks its fused kernel: with no mask and ``causal`` it may use a flash-style kernel
    whose memory is linear in the length; with a mask tensor, the ``(tq, tk)`` scores are
    built."""

    name = "dot"

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        mask = check_mask(mask, q, k)
        tq, tk = q.shape[2], k.shape[2]
        if (
            torch.compiler.is_compiling()
            and q.device.type == "cpu"
            and (tk <= COMPILED_CPU_WRITTEN_OUT_MAX_KEYS or tq == 1)
        ):
            broadcast = broadcast_pays(q, k)
            # causal alone with tk >= tq: every query may attend key 0
            empty_rows = mask is not None or tk < tq
            mask = with_causal(mask, tq, tk, causal, q.device)
            return softmax_attention(q, k, v, mask, broadcast=broadcast, empty_rows=empty_rows)
        if causal and mask is None and tq == tk:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        mask = with_causal(mask, tq, tk, causal, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = with_causal(check_mask(mask, q, k), q.shape[2], k.shape[2], causal, q.device)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * default_scale(q.shape[-1])
        return masked_softmax(scores, mask)
