"""Attention in its similarity-kernel form (assignment 002, eq. 3)::

    V'_i = sum_j sim(Q_i, K_j) V_j / sum_r sim(Q_i, K_r)

With ``sim(q, k) = exp(q . k / sqrt(D))`` this is softmax attention (eq. 2); with
``sim(q, k) = phi(q) . phi(k)`` for a positive feature map ``phi`` it is linear attention,
which :mod:`~seqfunc.nn.attention_kernels.linear` computes without the ``(tq, tk)`` matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from seqfunc.nn.attention_kernels.base import check_mask, with_causal

Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def exp_similarity(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``sim(q, k) = exp(q . k / sqrt(D))``: ``(b, h, tq, D), (b, h, tk, D) -> (b, h, tq, tk)``."""
    return torch.exp(torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1]))


def similarity_weights(
    q: torch.Tensor,
    k: torch.Tensor,
    sim: Similarity,
    mask: torch.Tensor | None = None,
    *,
    causal: bool = False,
) -> torch.Tensor:
    """``sim(Q_i, K_j) / sum_r sim(Q_i, K_r)`` over the allowed keys: ``(b, h, tq, tk)``
    (rows with no allowed key are zeros)."""
    mask = with_causal(check_mask(mask, q, k), q.shape[2], k.shape[2], causal, q.device)
    s = sim(q, k)
    if mask is not None:
        s = s * mask
    total = s.sum(dim=-1, keepdim=True)
    return s / torch.where(total > 0, total, torch.ones_like(total))


def similarity_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    sim: Similarity,
    mask: torch.Tensor | None = None,
    *,
    causal: bool = False,
) -> torch.Tensor:
    """Eq. 3 computed literally: ``(b, h, tq, D), (b, h, tk, D), (b, h, tk, M) -> (b, h, tq, M)``."""
    return torch.einsum("bhqk,bhkm->bhqm", similarity_weights(q, k, sim, mask, causal=causal), v)
