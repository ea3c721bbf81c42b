"""A key/value cache for incremental decoding, as an explicit pytree (pure functions).

Fixed-size, preallocated buffers plus a position index: every decoding step has the same
tensor shapes, so a compiled step never recompiles, and nothing is mutated in place::

    cache = init_kv_cache(layers=4, batch=1, heads=4, max_len=576, head_dim=32)
    # per layer: k_all = write(cache["k"][i], k_new, cache["pos"]); the same for v
    mask = cached_causal_mask(cache["pos"], q_len, max_len)   # (q_len, max_len)
    cache = advance(cache, new_k, new_v, q_len)

Queries attend over the whole buffer; the mask hides the slots not written yet, so the
result equals attention over the filled prefix (masked scores get weight exactly 0).
"""

from __future__ import annotations

import torch


def init_kv_cache(
    *, layers: int, batch: int, heads: int, max_len: int, head_dim: int,
    dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
) -> dict:
    """``{"k": [(b, h, max_len, d)] * layers, "v": [...], "pos": 0-d int64}``, all zeros."""
    def zeros():
        return torch.zeros(batch, heads, max_len, head_dim, dtype=dtype, device=device)

    return {
        "k": [zeros() for _ in range(layers)],
        "v": [zeros() for _ in range(layers)],
        "pos": torch.zeros((), dtype=torch.int64, device=device),
    }


def write(buffer: torch.Tensor, new: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``buffer (b, h, T, d)`` with ``new (b, h, t, d)`` written at slots ``pos .. pos + t - 1``
    (a new tensor; the argument is left untouched)."""
    slots = pos + torch.arange(new.shape[2], device=new.device)
    return buffer.index_copy(2, slots, new)


def cached_causal_mask(pos: torch.Tensor, q_len: int, max_len: int) -> torch.Tensor:
    """``(q_len, max_len)``: query ``i`` (absolute position ``pos + i``) may attend slot ``j``
    iff ``j <= pos + i`` — causal, and blind to the slots not yet written."""
    device = pos.device
    query_pos = pos + torch.arange(q_len, device=device)
    return torch.arange(max_len, device=device)[None, :] <= query_pos[:, None]


def capacity(cache: dict) -> int:
    """How many positions the buffers hold."""
    return cache["k"][0].shape[2] if cache["k"] else 0
