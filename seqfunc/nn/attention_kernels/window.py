"""Sliding-window (local) attention: each query attends only the keys near its position.

Query ``i`` may attend key ``j`` when ``|j - (i + tk - tq)| < window`` (and the mask allows
it); with ``causal=True`` or a causal mask this is the band ``i - window < j <= i``. The
queries are processed in blocks of ``max(window, 64)`` rows, each against the keys its band
can reach, so time and memory grow as ``t * window``, not ``t^2``.
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
)

MIN_BLOCK = 64


def band_block(q_start, q_end, k_start, k_end, offset, window, device) -> torch.Tensor:
    """``(q_end - q_start, k_end - k_start)``: True where ``|j - (i + offset)| < window``."""
    i = torch.arange(q_start, q_end, device=device)[:, None] + offset
    j = torch.arange(k_start, k_end, device=device)[None, :]
    return (j - i).abs() < window


@attrs.frozen
class SlidingWindow(AttentionKernel):
    """Scaled dot-product attention restricted to a band of width ``window`` on each side.
    Accepts any mask broadcastable to ``(b, h, tq, tk)``."""

    name = "window"
    window: int = attrs.field(default=16, validator=positive)

    def _blocks(self, tq, tk):
        """``(q_start, q_end, k_start, k_end)`` per query block: the keys its band reaches."""
        offset, size = tk - tq, max(self.window, MIN_BLOCK)
        for qs in range(0, tq, size):
            qe = min(qs + size, tq)
            ks = max(0, qs + offset - self.window + 1)
            ke = min(tk, qe - 1 + offset + self.window)
            yield qs, qe, ks, max(ks, ke)

    def _block_mask(self, mask, causal, qs, qe, ks, ke, offset, device):
        allowed = band_block(qs, qe, ks, ke, offset, self.window, device)[None, None]
        if causal:
            allowed = allowed & causal_block(qs, qe, ks, ke, offset, device)
        user = block_of(mask, qs, qe, ks, ke)
        return allowed if user is None else allowed & user

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        mask = check_mask(mask, q, k)
        tq, tk = q.shape[2], k.shape[2]
        scale = default_scale(q.shape[-1])
        outs = []
        for qs, qe, ks, ke in self._blocks(tq, tk):
            allowed = self._block_mask(mask, causal, qs, qe, ks, ke, tk - tq, q.device)
            scores = torch.einsum("bhqd,bhkd->bhqk", q[:, :, qs:qe], k[:, :, ks:ke]) * scale
            weights = masked_softmax(scores, allowed)
            outs.append(torch.einsum("bhqk,bhkd->bhqd", weights, v[:, :, ks:ke]))
        return torch.cat(outs, dim=2)

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = check_mask(mask, q, k)
        tq, tk = q.shape[2], k.shape[2]
        allowed = self._block_mask(mask, causal, 0, tq, 0, tk, tk - tq, q.device)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * default_scale(q.shape[-1])
        return masked_softmax(scores, allowed)
