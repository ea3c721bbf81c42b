"""Dynamic loss scaling as an optimizer transform, its scale in the optimizer state.

    opt = dynamic_loss_scale(apply_if_finite(chain(clip_by_global_norm(1.0), adam(lr))))

fp16's smallest normal number is 6e-5: small gradients underflow to zero. The step
(:func:`seqfunc.train.make_step`) multiplies the loss by the current scale (read from the
optimizer state with :func:`current_scale`) before it differentiates, so the fp16 gradients
are ``scale`` times larger; this transform divides them again and then:

* if the unscaled gradients hold an Inf or a NaN (the scale was too large: an overflow), it
  skips the update (zero updates, the inner state as it was, its step counter too) and
  halves the scale;
* otherwise it runs the inner transform, and after ``growth_interval`` finite steps in a row
  doubles the scale.

The scale is a power of two, so scaling and unscaling are exact. Branch-free
(``torch.where``): it compiles and vmaps like the rest, and its state is tensors, so a
checkpoint holds it and a resume continues bit for bit. It goes outside
:func:`seqfunc.optim.apply_if_finite`: an overflow is the scaler's to handle (it is expected
while the scale settles), so the inner guard counts only the non-finite updates that a
finite gradient still makes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from seqfunc.optim import GradientTransformation, Reduce, global_norm, row_norms
from seqfunc.tree import tree_flatten, tree_leaves, tree_unflatten

PyTree = Any

#: torch.amp.GradScaler's defaults are 2**16 and 2000
INITIAL_SCALE = 2.0**15
GROWTH_INTERVAL = 2000


class LossScaleState(NamedTuple):
    """The inner transform's state; the scale (0-d float32, a power of two); finite steps
    since the scale last changed and overflows skipped in all (0-d int64 each)."""

    inner: PyTree
    scale: torch.Tensor
    good_steps: torch.Tensor
    overflows: torch.Tensor


def dynamic_loss_scale(
    inner: GradientTransformation,
    *,
    initial_scale: float = INITIAL_SCALE,
    growth_interval: int = GROWTH_INTERVAL,
    min_scale: float = 1.0,
    rows: bool = False,
    reduce: Reduce | None = None,
) -> GradientTransformation:
    """Unscale the gradients, skip and halve on overflow, double after ``growth_interval``
    finite steps (see the module docstring); the scale never drops below ``min_scale``.

    ``rows=True``: the parameters are the ``(members, n)`` matrix of a vmapped job
    (:func:`seqfunc.members_step.make_members_step`); each member has its own scale, counts
    and overflow decision, as a run alone would: ``scale``, ``good_steps`` and ``overflows``
    are ``(members, 1)`` columns. ``reduce``: the gradients are slices of a vector sharded
    over processes, checked whole (:func:`seqfunc.optim.global_norm`)."""

    def init(params):
        first = tree_leaves(params)[0]
        shape = (first.shape[0], 1) if rows else ()
        count = torch.zeros(shape, dtype=torch.int64, device=first.device)
        scale = torch.full(shape, initial_scale, dtype=torch.float32, device=first.device)
        return LossScaleState(inner.init(params), scale, count, count.clone())

    def update(updates, state, params=None):
        leaves, spec = tree_flatten(updates)
        unscaled = [leaf / state.scale for leaf in leaves]
        if rows:
            finite = torch.isfinite(row_norms(unscaled)).unsqueeze(1)  # (members, 1)
            mask = lambda x: finite.view(-1, *([1] * (x.dim() - 1))) if x.dim() else finite.any()
        else:
            finite = torch.isfinite(global_norm(unscaled, reduce))
            mask = lambda x: finite
        # an overflow's gradients are zeros for the inner transform, whose result is dropped
        safe = [torch.where(mask(g), g, torch.zeros_like(g)) for g in unscaled]
        new_updates, new_inner = inner.update(tree_unflatten(safe, spec), state.inner, params)
        new_updates = tree_unflatten(
            [torch.where(mask(u), u, torch.zeros_like(u)) for u in tree_leaves(new_updates)],
            tree_flatten(new_updates)[1],
        )
        kept = [
            torch.where(mask(new), new, old)
            for new, old in zip(tree_leaves(new_inner), tree_leaves(state.inner))
        ]
        good = torch.where(finite, state.good_steps + 1, torch.zeros_like(state.good_steps))
        grow = good >= growth_interval
        scale = torch.where(
            finite,
            torch.where(grow, state.scale * 2.0, state.scale),
            torch.clamp(state.scale * 0.5, min=min_scale),
        )
        return new_updates, LossScaleState(
            tree_unflatten(kept, tree_flatten(state.inner)[1]),
            scale,
            torch.where(grow, torch.zeros_like(good), good),
            state.overflows + (~finite).to(torch.int64),
        )

    return GradientTransformation(init, update)


def loss_scale_state(opt_state: PyTree) -> LossScaleState | None:
    """The :class:`LossScaleState` in an optimizer state (outermost first), or None."""
    if isinstance(opt_state, LossScaleState):
        return opt_state
    if isinstance(opt_state, (tuple, list)):
        for part in opt_state:
            found = loss_scale_state(part)
            if found is not None:
                return found
    return None


def current_scale(opt_state: PyTree) -> torch.Tensor | None:
    """The scale the next step multiplies its loss by (None: the optimizer does not scale)."""
    found = loss_scale_state(opt_state)
    return None if found is None else found.scale
