"""Evaluation of the stacked members of a vmapped job (a sweep, an ensemble) in one pass: the
model's forward pass vmapped over their parameters, each metric's sum kept per member.

A task that offers ``evaluate_members(model, params, batches, device=None) -> [record, ...]``
(params: leaves ``(members, ...)``) is evaluated this way; the others member by member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.func import vmap

from seqfunc.tree import tree_leaves, tree_unstack


def evaluate_each(
    task, model, params, batches: Callable[[], Iterable[dict]], *, device=None
) -> list[dict]:
    """Each member's record of stacked ``params``: in one vmapped pass when the task offers
    ``evaluate_members``, else member by member (``batches()`` makes the batches anew)."""
    if hasattr(task, "evaluate_members"):
        return task.evaluate_members(model, params, batches(), device=device)
    return [task.evaluate(model, p, batches(), device=device) for p in tree_unstack(params)]


def members_apply(model) -> Callable:
    """``apply(stacked_params, inputs) -> (members, *outputs)``: ``model.apply`` vmapped over
    the members' parameters, the inputs shared."""
    return vmap(model.apply, in_dims=(0, None))


def over_members(fn: Callable, members: int | None, *, shared: bool = True) -> Callable:
    """``fn(params, x)`` for stacked ``params`` when ``members`` is not None (vmapped over the
    members; ``x`` shared, or ``shared=False``: one ``x`` a member along its first axis),
    else ``fn`` itself."""
    if members is None:
        return fn
    return vmap(fn, in_dims=(0, None if shared else 0))


def member_count(params) -> int:
    """The length of the leading (members) axis of stacked parameters."""
    return tree_leaves(params)[0].shape[0]


def sums(members: int | None, device=None) -> torch.Tensor:
    """A float64 accumulator: 0-d for one model, ``(members,)`` for stacked ones."""
    return torch.zeros(() if members is None else (members,), dtype=torch.float64, device=device)
