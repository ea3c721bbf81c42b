"""Simple self-attention (seed 004, question 4): no parameters, no scaling, one head.

``y_i = sum_j softmax_j(x_i . x_j) x_j``: every output is a mixture of the inputs, weighted
by their dot products with the input at its own position.
"""

from __future__ import annotations

import torch


def simple_self_attention(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` ``(b, t, d)``; ``mask`` ``(b, t)``, True at real tokens (padding is never
    attended to) -> ``(b, t, d)``."""
    scores = torch.einsum("bqd,bkd->bqk", x, x)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
    return torch.einsum("bqk,bkd->bqd", torch.softmax(scores, dim=-1), x)
