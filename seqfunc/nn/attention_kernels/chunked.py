"""Chunked exact attention: softmax attention computed block by block with an online
softmax (Milakov & Gimelshein 2018; the FlashAttention recurrence), never holding more than
one ``(chunk, chunk)`` block of scores.

Forward, per query block, over the key blocks: keep the running row maximum ``m``, the
running normaliser ``row_sum`` and the unnormalised output ``acc``; a new block rescales them by
``exp(m_old - m_new)``. Only ``q, k, v``, the output and the row log-sum-exp are saved for
the backward pass, which recomputes each block's weights from the log-sum-exp. So the
memory of forward + backward grows linearly in the length (for a fixed chunk size) — as
long as the mask does not itself hold ``tq * tk`` entries: use ``causal=True`` and a
key-padding mask ``(b, 1, 1, tk)`` for long sequences. Results equal full softmax attention
up to float rounding, gradients included.
"""

from __future__ import annotations

import attrs
import torch

from seqfunc.config import positive
from seqfunc.nn.attention_kernels.base import (
    AttentionKernel,
    block_of,
    causal_block,
    check_mask,
    default_scale,
    masked_softmax,
    with_causal,
)


def _blocks(tq: int, tk: int, chunk: int, causal: bool):
    """``(qs, qe, [(ks, ke), ...])`` per query block; with ``causal``, key blocks wholly in
    the future of every query of the block are skipped."""
    offset = tk - tq
    for qs in range(0, tq, chunk):
        qe = min(qs + chunk, tq)
        last_key = tk if not causal else max(0, min(tk, qe + offset))
        yield qs, qe, [(ks, min(ks + chunk, last_key)) for ks in range(0, last_key, chunk)]


def _allowed(mask, causal, qs, qe, ks, ke, offset, device):
    allowed = block_of(mask, qs, qe, ks, ke)
    if causal:
        c = causal_block(qs, qe, ks, ke, offset, device)[None, None]
        allowed = c if allowed is None else allowed & c
    return allowed


def _scores(q_blk, k_blk, scale, allowed):
    s = torch.einsum("bhqd,bhkd->bhqk", q_blk, k_blk) * scale
    return s if allowed is None else s.masked_fill(~allowed, float("-inf"))


def chunked_forward(q, k, v, mask, causal, chunk, scale):
    """``(out (b, h, tq, dv), lse (b, h, tq))``; ``lse = +inf`` on rows with no allowed key."""
    b, h, tq, _ = q.shape
    tk, dv = k.shape[2], v.shape[-1]
    outs, lses = [], []
    for qs, qe, key_blocks in _blocks(tq, tk, chunk, causal):
        q_blk = q[:, :, qs:qe]
        n = qe - qs
        m = q.new_full((b, h, n), float("-inf"))
        row_sum = q.new_zeros((b, h, n))
        acc = q.new_zeros((b, h, n, dv))
        for ks, ke in key_blocks:
            allowed = _allowed(mask, causal, qs, qe, ks, ke, tk - tq, q.device)
            s = _scores(q_blk, k[:, :, ks:ke], scale, allowed)
            m_new = torch.maximum(m, s.amax(dim=-1))
            m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p = torch.exp(s - m_safe[..., None])  # masked scores: exp(-inf) = 0
            correction = torch.exp(m - m_safe)  # m = -inf (nothing seen yet): 0
            row_sum = row_sum * correction + p.sum(dim=-1)
            acc = acc * correction[..., None] + torch.einsum("bhqk,bhkd->bhqd", p, v[:, :, ks:ke])
            m = m_new
        live = row_sum > 0
        l_safe = torch.where(live, row_sum, torch.ones_like(row_sum))
        outs.append(acc / l_safe[..., None])
        m_fin = torch.where(torch.isinf(m), torch.zeros_like(m), m)
        lses.append(
            torch.where(live, m_fin + torch.log(l_safe), torch.full_like(row_sum, float("inf")))
        )
    return torch.cat(outs, dim=2), torch.cat(lses, dim=2)


def chunked_backward(grad_out, q, k, v, out, lse, mask, causal, chunk, scale):
    """Gradients ``(dq, dk, dv)`` recomputing each block's weights from ``lse``."""
    tq, tk = q.shape[2], k.shape[2]
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    delta = (grad_out * out).sum(dim=-1)  # (b, h, tq): sum_j P_ij dP_ij
    for qs, qe, key_blocks in _blocks(tq, tk, chunk, causal):
        q_blk, g_blk = q[:, :, qs:qe], grad_out[:, :, qs:qe]
        lse_blk, delta_blk = lse[:, :, qs:qe, None], delta[:, :, qs:qe, None]
        for ks, ke in key_blocks:
            allowed = _allowed(mask, causal, qs, qe, ks, ke, tk - tq, q.device)
            p = torch.exp(_scores(q_blk, k[:, :, ks:ke], scale, allowed) - lse_blk)
            dv[:, :, ks:ke] += torch.einsum("bhqk,bhqd->bhkd", p, g_blk)
            dp = torch.einsum("bhqd,bhkd->bhqk", g_blk, v[:, :, ks:ke])
            ds = p * (dp - delta_blk) * scale
            dq[:, :, qs:qe] += torch.einsum("bhqk,bhkd->bhqd", ds, k[:, :, ks:ke])
            dk[:, :, ks:ke] += torch.einsum("bhqk,bhqd->bhkd", ds, q_blk)
    return dq, dk, dv


class ChunkedAttentionFunction(torch.autograd.Function):
    """Autograd (and ``torch.func``) entry: saves ``q, k, v, out, lse`` only."""

    generate_vmap_rule = True  # forward and backward are plain torch ops: vmap traces them

    @staticmethod
    def forward(q, k, v, mask, causal, chunk, scale):
        out, lse = chunked_forward(q, k, v, mask, causal, chunk, scale)
        return out, lse

    @staticmethod
    def setup_context(ctx, inputs, output):
        q, k, v, mask, causal, chunk, scale = inputs
        out, lse = output
        ctx.save_for_backward(q, k, v, out, lse, mask)
        ctx.causal, ctx.chunk, ctx.scale = causal, chunk, scale
        ctx.mark_non_differentiable(lse)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_lse):
        q, k, v, out, lse, mask = ctx.saved_tensors
        dq, dk, dv = chunked_backward(
            grad_out.contiguous(), q, k, v, out, lse, mask, ctx.causal, ctx.chunk, ctx.scale
        )
        return dq, dk, dv, None, None, None, None


def chunked_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    causal: bool = False,
    chunk: int = 128,
    scale: float | None = None,
) -> torch.Tensor:
    """``(b, h, tq, d), (b, h, tk, d), (b, h, tk, dv) -> (b, h, tq, dv)``, exact softmax
    attention in ``chunk x chunk`` blocks. ``mask``: broadcastable to ``(b, h, tq, tk)``."""
    mask = check_mask(mask, q, k)
    scale = default_scale(q.shape[-1]) if scale is None else scale
    out, _ = ChunkedAttentionFunction.apply(q, k, v, mask, causal, chunk, scale)
    return out


@attrs.frozen
class Chunked(AttentionKernel):
    """Exact softmax attention in blocks of ``chunk`` queries x ``chunk`` keys (memory linear
    in the length). Accepts any mask broadcastable to ``(b, h, tq, tk)``."""

    name = "chunked"
    chunk: int = attrs.field(default=128, validator=positive)

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        return chunked_attention(q, k, v, mask, causal=causal, chunk=self.chunk)

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = with_causal(check_mask(mask, q, k), q.shape[2], k.shape[2], causal, q.device)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * default_scale(q.shape[-1])
        return masked_softmax(scores, mask)
