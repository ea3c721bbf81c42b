"""Length-bucketed batches of variable-length token sequences.

Examples are grouped by their padded width (length rounded up to a multiple of
``pad_multiple``, capped at ``max_len``), so a batch never mixes widths and an epoch has only
``max_len / pad_multiple`` distinct batch shapes. With a ``token_budget`` a bucket of width
``w`` holds ``min(batch_size, token_budget // w)`` rows: short sequences come in big batches,
long ones in small batches, and no batch holds much more than the budget of token slots.

Within a width, the order of examples is shuffled per epoch (so batches differ from epoch to
epoch) and the order of the batches is shuffled too; both draws depend only on
``(seed, epoch)``. Evaluation batches keep the given (length-sorted) order.
"""

from __future__ import annotations

from collections.abc import Sequence
from random import Random

import numpy as np
import torch

from seqfunc.config import ConfigError


def padded_width(length: int, *, max_len: int, pad_multiple: int) -> int:
    """``length`` capped at ``max_len`` and rounded up to a multiple of ``pad_multiple``
    (but never past ``max_len``). Always >= 1."""
    length = max(1, min(length, max_len))
    return min(-(-length // pad_multiple) * pad_multiple, max_len)


def rows_per_batch(width: int, batch_size: int, token_budget: int | None) -> int:
    """How many rows a batch of this width holds (at least one)."""
    if token_budget is None:
        return batch_size
    return max(1, min(batch_size, token_budget // width))


def width_groups(
    lengths: Sequence[int], *, max_len: int, pad_multiple: int
) -> dict[int, list[int]]:
    """Example indices by padded width, each list in index order."""
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(padded_width(n, max_len=max_len, pad_multiple=pad_multiple), []).append(i)
    return groups


def width_counts(lengths: Sequence[int], *, max_len: int, pad_multiple: int) -> dict[int, int]:
    """How many examples each padded width has."""
    groups = width_groups(lengths, max_len=max_len, pad_multiple=pad_multiple)
    return {width: len(members) for width, members in groups.items()}


def bucket_batches(
    lengths: Sequence[int],
    *,
    batch_size: int,
    max_len: int,
    pad_multiple: int = 32,
    token_budget: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
) -> list[list[int]]:
    """Index lists, one per batch, covering every example exactly once.

    ``lengths[i]`` is the length of example ``i``; examples are expected sorted by length
    (the datasets keep them so) but need not be.
    """
    if batch_size <= 0:
        raise ConfigError(f"batch_size={batch_size}: must be > 0")
    if token_budget is not None and token_budget <= 0:
        raise ConfigError(f"token_budget={token_budget}: must be > 0")
    groups = width_groups(lengths, max_len=max_len, pad_multiple=pad_multiple)
    rng = Random(f"{seed}:{epoch}")
    batches: list[list[int]] = []
    for width in sorted(groups):
        members = groups[width]
        if shuffle:
            rng.shuffle(members)
        rows = rows_per_batch(width, batch_size, token_budget)
        batches.extend(members[start : start + rows] for start in range(0, len(members), rows))
    if shuffle:
        rng.shuffle(batches)
    return batches


def full_batches(
    lengths: Sequence[int],
    *,
    batch_size: int,
    max_len: int,
    pad_multiple: int = 32,
    seed: int = 0,
    epoch: int = 0,
) -> list[list[int]]:
    """Training index lists of exactly ``batch_size`` examples each, shuffled per
    ``(seed, epoch)``: full batches within each width, then the rows left over in every width
    pooled (in width order) into full batches of mixed widths (padded to the widest); fewer
    than ``batch_size`` rows left at the end sit this epoch out. Small data loses at most one
    batch's worth of rows per epoch, where dropping per width could lose most of it."""
    if batch_size <= 0:
        raise ConfigError(f"batch_size={batch_size}: must be > 0")
    groups = width_groups(lengths, max_len=max_len, pad_multiple=pad_multiple)
    rng = Random(f"{seed}:{epoch}")
    batches: list[list[int]] = []
    leftover: list[int] = []
    for width in sorted(groups):
        members = groups[width]
        rng.shuffle(members)
        full = len(members) - len(members) % batch_size
        batches.extend(members[start : start + batch_size] for start in range(0, full, batch_size))
        leftover.extend(members[full:])
    full = len(leftover) - len(leftover) % batch_size
    batches.extend(leftover[start : start + batch_size] for start in range(0, full, batch_size))
    rng.shuffle(batches)
    return batches


def count_full_batches(
    lengths: Sequence[int], *, batch_size: int, max_len: int, pad_multiple: int = 32
) -> int:
    """``len(full_batches(...))`` without building them (the same for every epoch)."""
    widths = width_counts(lengths, max_len=max_len, pad_multiple=pad_multiple)
    return (
        sum(c // batch_size for c in widths.values())
        + sum(c % batch_size for c in widths.values()) // batch_size
    )


def count_batches(
    lengths: Sequence[int],
    *,
    batch_size: int,
    max_len: int,
    pad_multiple: int = 32,
    token_budget: int | None = None,
) -> int:
    """``len(bucket_batches(...))`` without building them (the same for every epoch)."""
    widths = width_counts(lengths, max_len=max_len, pad_multiple=pad_multiple)
    return sum(
        -(-count // rows_per_batch(w, batch_size, token_budget)) for w, count in widths.items()
    )


def collate_classification(
    sequences: Sequence[Sequence[int]],
    labels: Sequence[int],
    *,
    pad_id: int,
    max_len: int,
    pad_multiple: int = 32,
) -> dict[str, torch.Tensor]:
    """``{"tokens": (b, w) int64, "label": (b,) int64}``; ``w`` is the padded width of the
    longest sequence; longer sequences are truncated to ``max_len`` (their first tokens kept)."""
    width = padded_width(max(len(s) for s in sequences), max_len=max_len, pad_multiple=pad_multiple)
    tokens = np.full((len(sequences), width), pad_id, dtype=np.int64)
    for row, seq in enumerate(sequences):
        seq = seq[:width]
        tokens[row, : len(seq)] = seq
    return {
        "tokens": torch.from_numpy(tokens),
        "label": torch.tensor(list(labels), dtype=torch.int64),
    }


class BucketedSplits:
    """Mixin for datasets whose splits are batched by :func:`bucket_batches`.

    The dataset provides ``_lengths(split) -> list[int]`` (one length per example, in the
    split's stored order) and a config with ``max_len``, ``pad_multiple``, ``token_budget`` and
    ``seed``. Training batches are shuffled per ``(seed, epoch)`` and follow the token budget;
    evaluation batches keep the stored order with ``batch_size`` rows.
    """

    #: Without a token budget, training batches hold exactly ``batch_size`` rows
    #: (:func:`full_batches`); False keeps every row, the last batch of a width smaller.
    full_training_batches: bool = False

    def _bucket_options(self, split: str) -> dict:
        c = self.config
        return {
            "max_len": c.max_len,
            "pad_multiple": c.pad_multiple,
            "token_budget": c.token_budget if split == "train" else None,
        }

    def _full(self, split: str) -> bool:
        return self.full_training_batches and split == "train" and self.config.token_budget is None

    def num_batches(self, split: str, batch_size: int) -> int:
        """Batches per epoch of ``split`` (the same every epoch)."""
        if self._full(split):
            return count_full_batches(
                self._lengths(split),
                batch_size=batch_size,
                max_len=self.config.max_len,
                pad_multiple=self.config.pad_multiple,
            )
        return count_batches(
            self._lengths(split), batch_size=batch_size, **self._bucket_options(split)
        )

    def batch_indices(self, split: str, batch_size: int, *, epoch: int = 0) -> list[list[int]]:
        """Example indices of each batch of one epoch of ``split``."""
        if self._full(split):
            return full_batches(
                self._lengths(split),
                batch_size=batch_size,
                max_len=self.config.max_len,
                pad_multiple=self.config.pad_multiple,
                seed=self.config.seed,
                epoch=epoch,
            )
        return bucket_batches(
            self._lengths(split),
            batch_size=batch_size,
            shuffle=split == "train",
            seed=self.config.seed,
            epoch=epoch,
            **self._bucket_options(split),
        )
