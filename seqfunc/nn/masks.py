"""Boolean attention masks. Convention throughout seqfunc: **True means "may attend"**.

Masks broadcast against attention scores of shape ``(batch, heads, query, key)``.
(The seed notebooks and ``torch.nn.Transformer`` use the opposite convention, True = blocked;
``F.scaled_dot_product_attention`` uses ours.)
"""

from __future__ import annotations

import torch


def causal_mask(
    query_len: int, key_len: int | None = None, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """``(query_len, key_len)``: query i may attend keys ``j <= i + (key_len - query_len)``.

    With ``key_len == query_len`` this is the lower triangle (the "square subsequent" mask,
    negated); a longer key axis means the queries are the last positions (KV-cache decoding).
    """
    key_len = query_len if key_len is None else key_len
    offset = key_len - query_len
    q = torch.arange(query_len, device=device)[:, None]
    k = torch.arange(key_len, device=device)[None, :]
    return k <= q + offset


def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """``(batch, length)`` ids -> ``(batch, 1, 1, length)``: True at real (non-pad) keys."""
    return (tokens != pad_id)[:, None, None, :]


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Logical AND of the masks given (``None`` entries are skipped; all None gives None)."""
    result = None
    for mask in masks:
        if mask is not None:
            result = mask if result is None else result & mask
    return result
