"""The pure step of several members at once: one vmapped step for members that share the
data and the shapes and differ in their seed, their hyperparameters or their dropout rates.

    step = make_members_step(task.loss_fn(model), optimizer)   # optimizer: rows=True
    state = init_members_state(tree_stack([model.init(k) for k in init_keys]), optimizer)
    state, metrics = step(state, batch, step_keys(train_keys, i))   # metrics: (members,)

Every member's loss is the same ``loss_fn`` that :func:`seqfunc.train.make_step`
differentiates, vmapped: the parameters (and the dropout keys) are stacked along a leading
``members`` axis, the batch is shared. The parameters travel as one ``(members, n)`` matrix,
so the flattened optimizer's elementwise transforms (Adam moments, weight decay, the
learning-rate step) run once for all members and do for each row exactly what they do for one
run's vector; its clipping is a row norm and its finite guard checks each row on its own
(``rows=True``: :func:`seqfunc.optim.apply_if_finite`, :func:`seqfunc.optim.clip_by_global_norm`).

Member ``i`` with seed ``s`` uses the keys a run derives from ``s`` (:func:`member_keys`:
``k_init, k_train = split(key(s))``, step key ``fold_in(k_train, step)``) and the same data
order, so it reproduces ``seqfunc train ... --seed s`` up to float rounding (the vmapped
kernels sum in another order than the single step's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.func import grad_and_value, vmap

from seqfunc import optim, rng
from seqfunc.compiled import compile_fn
from seqfunc.loss_scale import current_scale
from seqfunc.precision import in_precision
from seqfunc.train import TrainState, accumulated_value_and_grad, scaled_objective
from seqfunc.tree import ravel_tree, tree_flatten, tree_leaves, tree_map, tree_unflatten

PyTree = Any


def ravel_members(tree: PyTree) -> tuple[torch.Tensor, Callable[[torch.Tensor], PyTree]]:
    """``(flat (members, n), unravel)``: each member's leaves concatenated into one row (the
    order of :func:`seqfunc.tree.ravel_tree`), and the function that cuts such a matrix back
    into a stacked tree of views."""
    leaves, spec = tree_flatten(tree)
    members = leaves[0].shape[0]
    shapes = [leaf.shape[1:] for leaf in leaves]
    sizes = [math.prod(shape) for shape in shapes]

    def unravel(flat: torch.Tensor) -> PyTree:
        pieces = flat.split(sizes, dim=1)
        return tree_unflatten([p.view(members, *s) for p, s in zip(pieces, shapes)], spec)

    return torch.cat([leaf.reshape(members, -1) for leaf in leaves], dim=1), unravel


def init_members_state(params: PyTree, optimizer: optim.GradientTransformation) -> TrainState:
    """The state :func:`make_members_step` starts from: stacked ``params`` and the flattened
    ``optimizer``'s state over their ``(members, n)`` matrix (moments ``(members, n)``)."""
    device = tree_leaves(params)[0].device
    return TrainState(
        params,
        optimizer.flat_inner.init(ravel_members(params)[0]),
        torch.zeros((), dtype=torch.int64, device=device),
    )


def make_members_step(
    loss_fn: Callable,
    optimizer: optim.GradientTransformation,
    *,
    compile: bool = False,
    member_values: dict[str, torch.Tensor] | None = None,
    precision: str | torch.dtype = "fp32",
) -> Callable[[TrainState, dict, torch.Tensor], tuple[TrainState, dict]]:
    """``step(state, batch, keys) -> (state, metrics)`` over stacked params.

    ``state.params`` leaves have a leading ``members`` axis (start from
    :func:`init_members_state`), ``keys`` is ``(members, 2)``, ``batch`` is shared.
    ``optimizer`` is a flattened one built for rows (``make_optimizer(..., rows=True)``).
    Metrics (``loss``, ``grad_norm`` before clipping and the loss's aux ones) are
    ``(members,)`` tensors. ``compile=True`` compiles the whole step (once per batch shape).

    ``member_values``: ``{name: (members,) tensor}``, each member's value of model fields
    that change no shape (:data:`seqfunc.config.MEMBER_VALUE`, e.g. a dropout rate). The loss
    is then ``loss_fn(params, batch, key, values)``, ``values`` one member's ``{name: 0-d}``.

    ``precision``, a loss scale and accumulation work as in :func:`seqfunc.train.make_step`:
    each member computes in ``precision`` from its float32 row; an optimizer with a
    :func:`seqfunc.loss_scale.dynamic_loss_scale` built for rows gives each member its own
    scale (a ``(members, 1)`` column; metrics ``loss_scale``); a batch given as a list of
    micro-batches makes one gradient and one update.

    Eagerly, the forward pass is vmapped and the backward pass is plain autograd on the sum of
    the members' losses (each member's gradient is its own, as members share nothing): the
    gradients of ``vmap(grad(loss_fn))`` without functorch's grad layer under vmap, which
    doubled the cost of the step. Compiled, the graph is traced through
    ``vmap(grad_and_value(loss_fn))``.
    """
    inner = optimizer.flat_inner
    if inner is None:
        raise ValueError("make_members_step: pass a flattened optimizer (seqfunc.optim.flatten)")
    layout = None  # (unravel of one member's vector, the core step, unravel of the matrix)
    last = (None, None)  # (params this step returned last, the matrix they view)

    def step(state: TrainState, batch: dict, keys: torch.Tensor):
        nonlocal layout, last
        params_tree, flat = last
        if state.params is not params_tree:
            flat, unravel_members = ravel_members(state.params)
            one = ravel_tree(tree_map(lambda leaf: leaf[0], state.params))[1]
            if layout is None or layout[0] is not one:
                core = _members_core(loss_fn, inner, one, compile, member_values, precision)
                layout = (one, core, unravel_members)
        _, core, unravel_members = layout
        new_flat, opt_state, metrics = core(flat, state.opt_state, batch, keys)
        params = unravel_members(new_flat)
        last = (params, new_flat)
        return TrainState(params, opt_state, state.step + 1), metrics

    return step


def _members_core(
    loss_fn, inner, unravel_one, compiled: bool, member_values=None, precision="fp32"
) -> Callable:
    """``(flat (members, n), opt_state, batch, keys) -> (flat, opt_state, metrics)``."""
    values = member_values or {}
    with_values = loss_fn if values else (lambda params, batch, key, _: loss_fn(params, batch, key))
    member_loss = in_precision(
        lambda row, batch, key, values: with_values(unravel_one(row), batch, key, values),
        precision,
    )
    objective = scaled_objective(member_loss)  # (row, batch, key, scale, values)

    def vmapped(fn, scale):
        return vmap(fn, in_dims=(0, None, 0, None if scale is None else 0, 0))

    if compiled:

        def grads_of(flat, batch, keys, scale, values):
            value_and_grad = grad_and_value(objective, has_aux=True)
            return vmapped(value_and_grad, scale)(flat, batch, keys, scale, values)

    else:

        def grads_of(flat, batch, keys, scale, values):
            leaf = flat.detach().requires_grad_()
            with torch.enable_grad():
                loss, aux = vmapped(objective, scale)(leaf, batch, keys, scale, values)
                (grads,) = torch.autograd.grad(loss.sum(), [leaf])
            aux = tree_map(lambda x: x.detach() if isinstance(x, torch.Tensor) else x, aux)
            return grads, (loss.detach(), aux)

    grads_of = accumulated_value_and_grad(grads_of)

    def core(flat, opt_state, batch, keys):
        scale = current_scale(opt_state)  # (members, 1) or None
        scale = None if scale is None else scale.reshape(-1)
        grads, (loss, aux) = grads_of(flat, batch, keys, scale, values)
        norms = torch.linalg.vector_norm(grads, dim=1)
        updates, opt_state = inner.update(grads, opt_state, flat)
        if scale is None:
            metrics = {"loss": loss, "grad_norm": norms, **aux}
        else:
            metrics = {"loss": loss / scale, "grad_norm": norms / scale, "loss_scale": scale, **aux}
        return flat + updates, opt_state, metrics

    return compile_fn(core, dynamic=False) if compiled else core


def member_keys(seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(init_keys, train_keys)``, each ``(members, 2)``, as a run derives them from each
    seed (``split(key(seed))``)."""
    pairs = [rng.split(rng.key(int(s))) for s in seeds]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def step_keys(train_keys: torch.Tensor, step: int) -> torch.Tensor:
    """Each member's key of step ``step``, ``fold_in(k_train, step)``: ``(members, 2)``."""
    return rng.fold_in(train_keys, step)
