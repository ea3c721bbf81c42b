"""Sinusoidal positional encoding (Vaswani et al.; d2l 11.6), computed for any length."""

from __future__ import annotations

import torch


def sinusoidal_encoding(
    length: int,
    dim: int,
    *,
    offset: int | torch.Tensor = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(length, dim)``: ``P[t, 2i] = sin(t / 10000^(2i/dim))``, ``P[t, 2i+1] = cos(...)``.

    Positions start at ``offset``. No table and no maximum length: it is computed on demand
    (cheap next to the layers, and constant-folded under ``torch.compile``).
    """
    positions = torch.arange(length, dtype=torch.float32, device=device) + offset
    inv_freq = torch.pow(
        10000.0, -torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim
    )
    angles = positions[:, None] * inv_freq[None, :]  # (length, ceil(dim/2))
    encoding = torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1).flatten(-2)
    return encoding[:, :dim].to(dtype)


def add_sinusoidal(x: torch.Tensor, *, offset: int | torch.Tensor = 0) -> torch.Tensor:
    """``x``: ``(batch, length, dim)`` plus the encoding of positions ``offset ...``."""
    return x + sinusoidal_encoding(
        x.shape[-2], x.shape[-1], offset=offset, dtype=x.dtype, device=x.device
    )
