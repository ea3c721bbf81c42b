"""Random-slice batches for language models (assignment 004, question 10).

No padding and no sentence boundaries: ``b`` windows of length ``L + 1`` are cut from random
offsets of one long id tensor in a single indexing operation; the input is ``x[:, :-1]`` and
the target ``x[:, 1:]``. Offsets come from an explicit key, so a batch is a pure function of
(data, key) and sits outside any autograd graph (integer indexing of a constant tensor).
"""

from __future__ import annotations

import torch

from seqfunc import rng


def random_offsets(key: rng.KeyArray, n_tokens: int, batch: int, length: int) -> torch.Tensor:
    """``(batch,)`` start offsets, uniform in ``[0, n_tokens - length - 1]``."""
    span = n_tokens - length
    if span < 1:
        raise ValueError(
            f"random slices of length {length} + 1 need more than {length + 1} tokens; got {n_tokens}"
        )
    return rng.random_bits(key, (batch,)) % span


def slice_windows(data: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """``data (N,)`` and ``starts (b,)`` -> ``(b, length)``: ``data[starts[i] : starts[i] + length]``.
    ``data`` may also be a sequence stored on disk with a ``windows(starts, length)`` method
    (:class:`seqfunc.data.prepared.ShardedTokens`): only the windows are read."""
    if not isinstance(data, torch.Tensor):
        return data.windows(starts, length)
    return data[starts[:, None] + torch.arange(length, device=data.device)]


def random_slices(
    data: torch.Tensor, key: rng.KeyArray, batch: int, length: int
) -> dict[str, torch.Tensor]:
    """``{"inputs": (b, L), "targets": (b, L)}`` from ``b`` random windows of ``L + 1`` ids."""
    with torch.no_grad():
        window = slice_windows(data, random_offsets(key, data.numel(), batch, length), length + 1)
    return {"inputs": window[:, :-1], "targets": window[:, 1:]}
