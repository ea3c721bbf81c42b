"""Dropout driven by an explicit key (no global RNG), and the masks of a shard of rows.

A data-parallel rank runs the model on rows ``start .. start + rows`` of each global batch.
Inside :func:`global_rows`, dropout draws for those rows the very mask one process draws for
them on the whole batch (the draws are a hash of the key and the element's index), so N ranks
compute the same step as one process, dropout on. Every tensor dropout sees must then be
batch-major: its leading elements belong to row 0, the next as many to row 1, and so on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from seqfunc import rng

#: Rows of the global batch the current step runs on: ``(first row, rows)``; None: all of it.
#: Plain ints, read while tracing, so a compiled step is specialised to its rank's shard.
_SHARD: tuple[int, int] | None = None


@contextlib.contextmanager
def global_rows(start: int, rows: int) -> Iterator[None]:
    """Within the block, dropout masks are those of rows ``start .. start + rows`` of the
    global batch (the block's tensors hold those rows only). Nested, ``start`` counts from the
    outer block's first row: a micro-batch of a rank's shard (gradient accumulation)."""
    global _SHARD
    start += _SHARD[0] if _SHARD is not None else 0
    outer, _SHARD = _SHARD, (start, rows) if start else None
    try:
        yield
    finally:
        _SHARD = outer


def _mask_offset(x: torch.Tensor) -> int:
    """Index, in the global batch's tensor, of ``x``'s first element (0 outside a shard)."""
    if _SHARD is None:
        return 0
    start, rows = _SHARD
    if x.numel() % rows:
        raise ValueError(
            f"dropout on a tensor of shape {tuple(x.shape)} inside a shard of "
            f"{rows} rows: its leading dimension must be the batch"
        )
    return start * (x.numel() // rows)


def active(rate: float | torch.Tensor, train: bool) -> bool:
    """Whether dropout at ``rate`` changes anything: training, and a rate that is not 0. A
    tensor rate (a sweep member's, see :data:`seqfunc.config.MEMBER_VALUE`) counts as active:
    its value is not known outside the traced step."""
    return train and (isinstance(rate, torch.Tensor) or rate > 0.0)


def dropout(
    x: torch.Tensor, rate: float | torch.Tensor, *, key: rng.KeyArray | None, train: bool
) -> torch.Tensor:
    """Zero each entry with probability ``rate`` and rescale the rest by ``1 / (1 - rate)``.

    Identity when ``train`` is False or ``rate`` is 0. Training with ``rate > 0`` needs a key.
    ``rate`` may be a 0-d float64 tensor (one per member under ``vmap``): it draws the mask
    and scale of the same number, and a rate of 0 leaves ``x`` as it is.
    """
    if not active(rate, train):
        return x
    if key is None:
        raise ValueError(
            "dropout is active (train=True, rate > 0) but no key was given: "
            "pass key=seqfunc.rng.key(seed) to apply, or call it with train=False"
        )
    drop = rng.bernoulli(key, rate, x.shape, offset=_mask_offset(x))
    keep = 1.0 - rate
    if isinstance(keep, torch.Tensor):
        keep = keep.to(x.dtype)
    # in place on the quotient, which no backward reads: one tensor of x's size, not two
    return (x / keep).masked_fill_(drop, 0.0)
