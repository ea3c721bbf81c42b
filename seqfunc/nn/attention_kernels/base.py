"""What every attention kernel shares: the interface and the mask helpers.

A kernel maps per-head queries, keys and values to outputs::

    q: (b, h, tq, d)   k: (b, h, tk, d)   v: (b, h, tk, dv)   ->   (b, h, tq, dv)

Masks are boolean, **True = may attend**, broadcastable to ``(b, h, tq, tk)``; ``causal=True``
adds the causal mask (query ``i`` sees keys ``j <= i + tk - tq``) without building it, which
kernels that stream over blocks use to keep their memory linear in the length. A query that
may attend no key gets zeros, as torch's fused kernel gives.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from seqfunc import rng


class AttentionKernel:
    """Base of the kernels: frozen attrs subclasses whose fields are the kernel's options.

    ``projects``: whether the layer computes q, k, v and the output through learned linear
    maps (False for parameter-free attention, which attends over the inputs themselves).
    """

    name: ClassVar[str]
    projects: ClassVar[bool] = True

    def init(self, key: rng.KeyArray, heads: int, d_head: int) -> dict:
        """The kernel's own parameters (most kernels have none)."""
        return {}

    def apply(
        self,
        params: dict,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        causal: bool = False,
    ) -> torch.Tensor:
        raise NotImplementedError

    def weights(
        self,
        params: dict,
        q: torch.Tensor,
        k: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        causal: bool = False,
    ) -> torch.Tensor:
        """The ``(b, h, tq, tk)`` matrix whose rows mix the values (for inspection: it is
        built in full, whatever the kernel's memory use in :meth:`apply`)."""
        raise NotImplementedError


def as_4d(mask: torch.Tensor | None) -> torch.Tensor | None:
    """Left-pad a mask's shape with 1s to 4 axes ``(b, h, tq, tk)``."""
    if mask is None or mask.dim() == 4:
        return mask
    if mask.dim() > 4:
        raise ValueError(f"attention mask has {mask.dim()} axes; at most 4 (b, h, tq, tk)")
    return mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))


def check_mask(mask: torch.Tensor | None, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor | None:
    """``mask`` as 4 axes, checked to be boolean and broadcastable to ``(b, h, tq, tk)``."""
    if mask is None:
        return None
    if mask.dtype != torch.bool:
        raise ValueError(f"attention mask must be boolean (True = may attend), got {mask.dtype}")
    mask = as_4d(mask)
    target = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    try:
        torch.broadcast_shapes(tuple(mask.shape), target)
    except RuntimeError:
        raise ValueError(
            f"attention mask of shape {tuple(mask.shape)} does not broadcast to "
            f"(b, h, tq, tk) = {target}"
        ) from None
    return mask


def causal_block(
    q_start: int, q_end: int, k_start: int, k_end: int, offset: int, device
) -> torch.Tensor:
    """``(q_end - q_start, k_end - k_start)``: the causal mask restricted to one block;
    query ``i`` sees key ``j`` when ``j <= i + offset`` (``offset = tk - tq``)."""
    i = torch.arange(q_start, q_end, device=device)[:, None]
    j = torch.arange(k_start, k_end, device=device)[None, :]
    return j <= i + offset


def block_of(mask: torch.Tensor | None, q_start: int, q_end: int, k_start: int, k_end: int):
    """The part of a 4-axis broadcastable mask that covers one query/key block."""
    if mask is None:
        return None
    rows = slice(None) if mask.shape[2] == 1 else slice(q_start, q_end)
    cols = slice(None) if mask.shape[3] == 1 else slice(k_start, k_end)
    return mask[:, :, rows, cols]


def with_causal(mask: torch.Tensor | None, tq: int, tk: int, causal: bool, device):
    """``mask`` AND the causal mask when ``causal`` (the full ``(tq, tk)`` form)."""
    if not causal:
        return mask
    c = causal_block(0, tq, 0, tk, tk - tq, device)[None, None]
    return c if mask is None else mask & c


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis of ``scores`` ignoring masked entries; rows with no allowed
    entry give zeros (not NaN)."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    mask = mask.expand_as(scores)
    scores = scores.masked_fill(~mask, float("-inf"))
    # Fully masked rows would be softmax(-inf...) = NaN, whose gradient is NaN too: give those
    # rows finite scores, then zero them.
    live = mask.any(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(~live, 0.0), dim=-1)
    return weights * live


def default_scale(d: int) -> float:
    return 1.0 / math.sqrt(d)
