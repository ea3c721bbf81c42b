"""Padding and trimming of token id sequences."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from seqfunc.data.bucketing import padded_width


def pad_or_trim(tokens: Sequence[int], length: int, pad_id: int) -> list[int]:
    """Cut ``tokens`` to ``length`` or append ``pad_id`` up to it (assignment 000 5.1c). Pure."""
    tokens = list(tokens[:length])
    return tokens + [pad_id] * (length - len(tokens))


def pad_batch(sequences: Sequence[Sequence[int]], length: int, pad_id: int) -> np.ndarray:
    """``(len(sequences), length)`` int64 array, each row padded or trimmed."""
    out = np.full((len(sequences), length), pad_id, dtype=np.int64)
    for row, seq in enumerate(sequences):
        seq = seq[:length]
        out[row, : len(seq)] = seq
    return out


def used_width(tokens: torch.Tensor, pad_id: int, *, multiple: int = 1) -> int:
    """``tokens (b, t)`` -> one past the last position where some row holds a non-pad token,
    rounded up to a multiple of ``multiple`` and capped at ``t`` (at least 1): the positions
    from there on are padding in every row."""
    used = (tokens != pad_id).any(dim=0).nonzero()
    width = int(used[-1]) + 1 if len(used) else 1
    return padded_width(width, max_len=tokens.shape[1], pad_multiple=multiple)
