"""Rotary position embeddings (RoPE, Su et al. 2021) in the "rotate half" layout of
Llama, Mistral and Qwen2: the feature pairs are ``(x[i], x[i + d/2])``, not neighbours.

    inv_freq = rotary_frequencies(head_dim, theta=10000.0)           # (d/2,)
    cos, sin = rotary_angles(positions, inv_freq)                     # (t, d) each
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)       # (b, h, t, d)

Rotating queries and keys by their absolute positions makes every score ``q_m . k_n`` a
function of ``m - n`` only. Frequency scalings (``scaling``) stretch the longest wavelengths
for contexts longer than the model was trained on:

* ``"none"``: ``theta ** (-2i / d)``;
* ``"linear"``: every frequency divided by ``factor`` (position interpolation);
* ``"llama3"``: Llama 3.1's rule: wavelengths above ``original_context / low_freq_factor``
  divided by ``factor``, below ``original_context / high_freq_factor`` kept, and a smooth
  blend in between.
"""

from __future__ import annotations

import math

import torch

SCALINGS = ("none", "linear", "llama3")


def rotary_frequencies(
    head_dim: int,
    *,
    theta: float = 10000.0,
    scaling: str = "none",
    factor: float = 1.0,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
    original_context: int = 8192,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The ``(head_dim / 2,)`` fp32 angular frequencies (radians per position)."""
    if scaling not in SCALINGS:
        raise ValueError(f"rotary scaling {scaling!r}: must be one of {SCALINGS}")
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    inv_freq = 1.0 / (theta**exponents)
    if scaling == "linear":
        return inv_freq / factor
    if scaling == "llama3":
        wavelength = 2 * math.pi / inv_freq
        low_freq_wavelength = original_context / low_freq_factor
        high_freq_wavelength = original_context / high_freq_factor
        scaled = torch.where(wavelength > low_freq_wavelength, inv_freq / factor, inv_freq)
        smooth = (original_context / wavelength - low_freq_factor) / (
            high_freq_factor - low_freq_factor
        )
        blended = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelength < high_freq_wavelength) & ~(wavelength > low_freq_wavelength)
        return torch.where(medium, blended, scaled)
    return inv_freq


def rotary_angles(
    positions: torch.Tensor, inv_freq: torch.Tensor, *, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``positions (t,)`` -> ``(cos, sin)``, each ``(t, 2 * len(inv_freq))`` in ``dtype``
    (computed in fp32)."""
    angles = positions.float()[:, None] * inv_freq[None, :]  # (t, d/2)
    angles = torch.cat([angles, angles], dim=-1)  # (t, d): the two halves share a frequency
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(..., d)`` -> ``(-x[d/2:], x[:d/2])``: a quarter turn of each pair."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x (b, h, t, d)`` rotated pairwise by the angles of ``cos``/``sin`` ``(t, d)``."""
    return x * cos + rotate_half(x) * sin
