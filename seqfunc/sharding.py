"""Sharded optimizer state (ZeRO-1): the flat parameter vector cut into equal slices, one a
process, each process updating its slice of the parameters and of the optimizer's moments.

    sharding = Sharding(index, count, reduce_scatter, all_gather)
    part = sharding.take(flat)                    # (n,) -> (size,), zero-padded to count * size
    whole = sharding.gather(part, n)              # (size,) from every process -> (n,)

The collectives come from the caller (:mod:`seqfunc.runs.distributed` for a data-parallel
group), so this module knows nothing of process groups. The padding entries have a zero
gradient and a zero parameter, so every optimizer here leaves them at zero and they add
nothing to a norm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch

from seqfunc.tree import tree_map

PyTree = Any


@attrs.frozen
class Sharding:
    """Process ``index`` of ``count`` holds slice ``index`` of every flat vector.

    ``reduce_scatter(vector) -> part``: ``(count * size,)`` summed over the processes, this
    process's ``(size,)`` slice of the sum. ``all_gather(part) -> vector``: every process's
    ``(size,)`` slice, concatenated in process order into ``(count * size,)``."""

    index: int
    count: int
    reduce_scatter: Callable[[torch.Tensor], torch.Tensor]
    all_gather: Callable[[torch.Tensor], torch.Tensor]

    def size(self, n: int) -> int:
        """The length of one slice of an ``n``-vector: ``ceil(n / count)``."""
        return -(-n // self.count)

    def padded(self, vector: torch.Tensor) -> torch.Tensor:
        """``(n,)`` -> ``(count * size,)``, zeros appended."""
        pad = self.count * self.size(vector.numel()) - vector.numel()
        return torch.nn.functional.pad(vector, (0, pad)) if pad else vector

    def take(self, vector: torch.Tensor) -> torch.Tensor:
        """This process's ``(size,)`` slice of the zero-padded ``(n,)`` ``vector``."""
        size = self.size(vector.numel())
        return self.padded(vector).narrow(0, self.index * size, size)

    def gather(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """The ``(n,)`` vector whose slices the processes hold (``part``: this one's)."""
        return self.all_gather(part)[:n]


def is_per_entry(leaf: Any, n: int) -> bool:
    """Does an optimizer-state leaf hold one entry per parameter of an ``n``-vector (a
    moment), rather than a count or a hyperparameter (0-d)?"""
    return isinstance(leaf, torch.Tensor) and leaf.dim() == 1 and leaf.numel() == n


def slice_state(opt_state: PyTree, n: int, sharding: Sharding) -> PyTree:
    """A flat optimizer's whole state for an ``n``-vector -> this process's slice of it."""
    return tree_map(lambda x: sharding.take(x) if is_per_entry(x, n) else x, opt_state)


def gather_state(opt_state: PyTree, n: int, sharding: Sharding) -> PyTree:
    """This process's slice of the state -> the whole state (a collective: every process
    calls it at once)."""
    size = sharding.size(n)
    return tree_map(lambda x: sharding.gather(x, n) if is_per_entry(x, size) else x, opt_state)


def whole_state_like(opt_state: PyTree, n: int, sharding: Sharding) -> PyTree:
    """The whole state's shapes and dtypes, uninitialised (no collective): a template to read
    a checkpoint into."""
    size = sharding.size(n)
    return tree_map(
        lambda x: x.new_empty(n) if is_per_entry(x, size) else x,
        opt_state,
    )
