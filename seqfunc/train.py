"""The generic stepper: one train step for any model and task, optionally compiled.

    step = make_step(loss_fn, optimizer)                 # loss_fn(params, batch, key)
    state = init_state(params, optimizer)
    state, metrics = step(state, batch, key)

``step`` is a pure function ``(state, batch, key) -> (state, metrics)``. ``compile=True``
wraps the *whole* step (forward, backward, clipping, optimizer update) in one
``torch.compile`` graph, differentiated by ``torch.func.grad_and_value``; with a flattened
optimizer (``optim.flatten``) the step, compiled or eager, holds the parameters as one vector.
The eager step gets the same gradients from plain reverse-mode autograd
(:func:`autograd_value_and_grad`): functorch's transform adds a dispatch layer to every op,
which cost 16 % of the eager step of assignment 000's small Transformer
(benchmarks/formula_throughput.py's model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.func import grad_and_value

from seqfunc import optim
from seqfunc.compiled import compile_fn
from seqfunc.tree import ravel_tree, tree_flatten, tree_leaves, tree_map, tree_unflatten

PyTree = Any
LossFn = Callable[[PyTree, dict, torch.Tensor], tuple[torch.Tensor, dict]]


class TrainState(NamedTuple):
    params: PyTree
    opt_state: PyTree
    step: torch.Tensor  # 0-d int64: a tensor so that compiled code does not specialise on it


def init_state(params: PyTree, optimizer: optim.GradientTransformation) -> TrainState:
    device = next(x.device for x in tree_leaves(params) if isinstance(x, torch.Tensor))
    return TrainState(
        params, optimizer.init(params), torch.zeros((), dtype=torch.int64, device=device)
    )


def resolve_compile(compile: bool | None, device: torch.device | str) -> bool:
    """``None`` means the default: compile on CUDA, not on the CPU."""
    if compile is None:
        return torch.device(device).type == "cuda"
    return bool(compile)


def autograd_value_and_grad(loss_fn: LossFn) -> Callable:
    """``(params, batch, key) -> (grads, (loss, aux))``: what
    ``torch.func.grad_and_value(loss_fn, has_aux=True)`` returns (zeros for parameters the
    loss does not use, detached loss and aux), by ``torch.autograd.grad`` on detached copies
    of the leaves. Not for use under ``vmap``: that needs the torch.func transform."""

    def value_and_grad(params, batch, key):
        leaves, spec = tree_flatten(params)
        leaves = [leaf.detach().requires_grad_() for leaf in leaves]
        with torch.enable_grad():
            loss, aux = loss_fn(tree_unflatten(leaves, spec), batch, key)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True)
        aux = tree_map(lambda x: x.detach() if isinstance(x, torch.Tensor) else x, aux)
        return tree_unflatten(list(grads), spec), (loss.detach(), aux)

    return value_and_grad


def _value_and_grad(loss_fn: LossFn, compiled: bool) -> Callable:
    """torch.func's transform for a graph to compile, plain autograd eagerly (the same values)."""
    return grad_and_value(loss_fn, has_aux=True) if compiled else autograd_value_and_grad(loss_fn)


def make_step(
    loss_fn: LossFn,
    optimizer: optim.GradientTransformation,
    *,
    compile: bool | None = False,
    device: torch.device | str = "cpu",
    trim: Callable[[dict], dict] | None = None,
    all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[TrainState, dict, torch.Tensor], tuple[TrainState, dict]]:
    """Build ``step(state, batch, key) -> (state, metrics)``.

    ``loss_fn(params, batch, key) -> (loss, aux_metrics)``. The metrics returned are 0-d
    tensors (``loss``, ``grad_norm`` and the aux ones); reading them (``.item()``) is left to
    the caller, so nothing synchronises inside the step. ``compile=None`` picks the device
    default (see :func:`resolve_compile`). A compiled step compiles once per batch shape:
    keep shapes fixed, or few.

    ``trim(batch) -> batch`` runs eagerly on every batch before the step, e.g. a task's
    ``trim_padding`` (:meth:`seqfunc.tasks.seq2seq.Seq2SeqTask.trim_padding`), which cuts the
    positions that are padding in every row so the step does not compute on them.

    ``all_reduce(vector) -> vector`` sums a 1-D tensor over the processes of a data-parallel
    group (:func:`seqfunc.runs.distributed.all_reduce_sum`). With it, the step sums the
    gradient vector and the metrics across processes in one call, before the optimizer: each
    process's ``loss_fn`` must then return its share of the global loss
    (:func:`seqfunc.runs.distributed.sharded_loss`), so the sum is the global batch's.
    """
    step = _make_step(loss_fn, optimizer, resolve_compile(compile, device), all_reduce)
    if trim is None:
        return step
    return lambda state, batch, key: step(state, trim(batch), key)


def reduced(all_reduce, grads: torch.Tensor, loss: torch.Tensor, aux: dict):
    """The gradient vector, loss and aux metrics summed over processes in one all-reduce."""
    names = sorted(aux)
    packed = torch.cat(
        [
            grads.reshape(-1),
            loss.reshape(1).to(grads.dtype),
            *[aux[k].reshape(1).to(grads.dtype) for k in names],
        ]
    )
    total = all_reduce(packed)
    n = grads.numel()
    sums = {k: total[n + 1 + i] for i, k in enumerate(names)}
    return total[:n].view_as(grads), total[n], sums


def _make_step(
    loss_fn: LossFn, optimizer: optim.GradientTransformation, compiled: bool, all_reduce=None
) -> Callable:
    if optimizer.flat_inner is not None:
        return _flat_step(loss_fn, optimizer.flat_inner, compiled, all_reduce)
    value_and_grad = _value_and_grad(loss_fn, compiled)

    def step(state: TrainState, batch: dict, key: torch.Tensor):
        grads, (loss, aux) = value_and_grad(state.params, batch, key)
        if all_reduce is not None:
            flat, unravel = ravel_tree(grads)
            flat, loss, aux = reduced(all_reduce, flat, loss, aux)
            grads = unravel(flat)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        metrics = {"loss": loss, "grad_norm": optim.global_norm(grads), **aux}
        return TrainState(params, opt_state, state.step + 1), metrics

    if compiled:
        return compile_fn(step, dynamic=False)
    return step


def _flat_step(
    loss_fn: LossFn, inner: optim.GradientTransformation, compiled: bool, all_reduce=None
) -> Callable:
    """The step for a flattened optimizer (:func:`seqfunc.optim.flatten`).

    The parameters travel through the step as one vector: the loss sees views of it, the
    gradient comes out as one vector, and ``inner`` updates it directly. The per-leaf
    concatenations, splits and tree walks of the tree step go away, and compiled, so do the
    dynamo guards on every leaf. Against the per-leaf step, interleaved in one process:
    compiled, benchmarks/char_lm_throughput.py's GPT 2-6 % faster a step, the formula
    Transformer about 1 %; eager, the formula Transformer 2-8 %.
    The state's ``params`` are views of that vector; a state whose ``params`` are not the
    ones this step returned last (the first step, a restored checkpoint) is raveled once.
    """
    core = None  # the _FlatCore for the current tree layout
    last = (None, None)  # (params this step returned last, the vector they view)

    def step(state: TrainState, batch: dict, key: torch.Tensor):
        nonlocal core, last
        params_tree, flat = last
        if state.params is not params_tree:
            flat, unravel = ravel_tree(state.params)
            if core is None or not core.fits(flat, unravel):
                core = _FlatCore(loss_fn, inner, flat, unravel, compiled, all_reduce)
        new_flat, opt_state, count, metrics = core(flat, state.opt_state, state.step, batch, key)
        params = core.unravel(new_flat)
        last = (params, new_flat)
        return TrainState(params, opt_state, count), metrics

    return step


class _FlatCore:
    """``(flat, opt_state, count, batch, key) -> (flat, opt_state, count, metrics)`` for one
    layout, compiled or eager. :func:`ravel_tree` returns one ``unravel`` per tree layout
    (structure and leaf shapes), so that function and the vector's dtype and device name it."""

    def __init__(self, loss_fn, inner, flat, unravel, compiled, all_reduce=None):
        self.kind = (flat.dtype, flat.device)
        self.unravel = unravel  # also eagerly, each step: the tree of views of the new vector
        loss_of_flat = lambda flat, batch, key: loss_fn(unravel(flat), batch, key)
        value_and_grad = _value_and_grad(loss_of_flat, compiled)

        def core(flat, opt_state, count, batch, key):
            grads, (loss, aux) = value_and_grad(flat, batch, key)
            if all_reduce is not None:
                grads, loss, aux = reduced(all_reduce, grads, loss, aux)
            updates, opt_state = inner.update(grads, opt_state, flat)
            metrics = {"loss": loss, "grad_norm": optim.global_norm(grads), **aux}
            return flat + updates, opt_state, count + 1, metrics

        self._run = compile_fn(core, dynamic=False) if compiled else core

    def fits(self, flat: torch.Tensor, unravel: Callable) -> bool:
        return unravel is self.unravel and (flat.dtype, flat.device) == self.kind

    def __call__(self, *args):
        return self._run(*args)
