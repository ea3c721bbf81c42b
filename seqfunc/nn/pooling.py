"""Global pools over the time axis that ignore padding (``mask``: True = a real token)."""

from __future__ import annotations

import torch

POOLS = ("mean", "max", "select")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` ``(b, t, d)``, ``mask`` ``(b, t)`` -> mean over the real positions ``(b, d)``."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over the real positions ``(b, d)``; padding is never the maximum."""
    return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


def select_first(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The first position ``(b, d)`` (sequences are left-aligned, so it is always real)."""
    return x[:, 0]


def pool(x: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """``kind`` in :data:`POOLS`: ``(b, t, d)`` -> ``(b, d)``."""
    if kind == "mean":
        return masked_mean(x, mask)
    if kind == "max":
        return masked_max(x, mask)
    if kind == "select":
        return select_first(x, mask)
    raise ValueError(f"pool {kind!r}: must be one of {', '.join(POOLS)}")
