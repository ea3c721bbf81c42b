"""Evaluation of the stacked members of a vmapped job (a sweep, an ensemble) in one pass: the
model's forward pass vmapped over their parameters, each metric's sum kept per member.

A task that offers ``evaluate_members(model, params, batches, device=None) -> [record, ...]``
(params: leaves ``(members, ...)``) is evaluated this way; the others member by member.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.func import vmap

from seqfunc.tree import tree_leaves


def members_apply(model) -> Callable:
    """``apply(stacked_params, inputs) -> (members, *outputs)``: ``model.apply`` vmapped over
    the members' parameters, the inputs shared."""
    return vmap(model.apply, in_dims=(0, None))


def member_count(params) -> int:
    """The length of the leading (members) axis of stacked parameters."""
    return tree_leaves(params)[0].shape[0]


def sums(members: int | None, device=None) -> torch.Tensor:
    """A float64 accumulator: 0-d for one model, ``(members,)`` for stacked ones."""
    return torch.zeros(() if members is None else (members,), dtype=torch.float64, device=device)
