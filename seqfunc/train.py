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

Training larger models: ``precision="bf16"`` or ``"fp16"`` computes the loss and its gradient
in that dtype from the float32 parameters (:mod:`seqfunc.precision`); an optimizer wrapped in
:func:`seqfunc.loss_scale.dynamic_loss_scale` gets its scale applied to the loss here; and a
batch given as a list of micro-batches is accumulated: one gradient, one update
(:func:`accumulated_value_and_grad`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.func import grad_and_value

from seqfunc import optim
from seqfunc.compiled import compile_fn
from seqfunc.loss_scale import current_scale
from seqfunc.nn.dropout import global_rows
from seqfunc.precision import in_precision
from seqfunc.sharding import Sharding
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
    """``(params, *args) -> (grads, (loss, aux))``: what
    ``torch.func.grad_and_value(loss_fn, has_aux=True)`` returns (zeros for parameters the
    loss does not use, detached loss and aux), by ``torch.autograd.grad`` on detached copies
    of the leaves. Not for use under ``vmap``: that needs the torch.func transform."""

    def value_and_grad(params, *args):
        leaves, spec = tree_flatten(params)
        leaves = [leaf.detach().requires_grad_() for leaf in leaves]
        with torch.enable_grad():
            loss, aux = loss_fn(tree_unflatten(leaves, spec), *args)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True)
        aux = tree_map(lambda x: x.detach() if isinstance(x, torch.Tensor) else x, aux)
        return tree_unflatten(list(grads), spec), (loss.detach(), aux)

    return value_and_grad


def _value_and_grad(loss_fn: LossFn, compiled: bool) -> Callable:
    """torch.func's transform for a graph to compile, plain autograd eagerly (the same values)."""
    return grad_and_value(loss_fn, has_aux=True) if compiled else autograd_value_and_grad(loss_fn)


def scaled_objective(loss_fn: LossFn) -> Callable:
    """``(params, batch, key, scale, *rest) -> (loss * scale, aux)``: what the step
    differentiates; ``scale`` is the loss scale of a
    :func:`seqfunc.loss_scale.dynamic_loss_scale` optimizer, None without one (then the loss as
    it is); ``rest`` goes to ``loss_fn(params, batch, key, *rest)``."""

    def objective(params, batch, key, scale, *rest):
        value, aux = loss_fn(params, batch, key, *rest)
        return (value if scale is None else value * scale), aux

    return objective


def batch_rows(batch: dict) -> int:
    """The rows of a batch: the leading size of its first tensor that has one."""
    return next(x.shape[0] for x in batch.values() if isinstance(x, torch.Tensor) and x.dim())


def accumulated_value_and_grad(value_and_grad: Callable) -> Callable:
    """``value_and_grad(params, batch, key, *rest)`` that also takes ``batch`` as a list of
    micro-batches, consecutive row slices of one batch: it then runs them one after another
    (the peak memory is one micro-batch's) and sums their gradients, losses and aux metrics.

    Each micro-batch's loss must be its share of the whole batch's, as a data-parallel rank's
    is (:func:`seqfunc.runs.distributed.sharded_loss` weights it by the micro-batch's
    ``loss_weight``), so the sums are the whole batch's. Each runs inside
    :func:`seqfunc.nn.dropout.global_rows` of its rows, so dropout draws the masks of the whole
    batch's rows: K micro-batches make the step one batch makes."""

    def run(params, batch, key, *rest):
        if not isinstance(batch, (list, tuple)):
            return value_and_grad(params, batch, key, *rest)
        total, start = None, 0
        for micro in batch:
            rows = batch_rows(micro)
            with global_rows(start, rows):
                out = value_and_grad(params, micro, key, *rest)
            total = out if total is None else tree_map(torch.add, total, out)
            start += rows
        return total

    return run


def _metrics(scale, grads: torch.Tensor, loss: torch.Tensor, aux: dict, reduce=None) -> dict:
    """The step's metrics: loss and gradient norm unscaled (exact: the scale is a power of
    two), and the loss scale the step used, if any. ``reduce``: ``grads`` is this process's
    slice of a sharded gradient (:func:`seqfunc.optim.global_norm`)."""
    grad_norm = optim.global_norm(grads, reduce)
    if scale is None:
        return {"loss": loss, "grad_norm": grad_norm, **aux}
    return {"loss": loss / scale, "grad_norm": grad_norm / scale, "loss_scale": scale, **aux}


def make_step(
    loss_fn: LossFn,
    optimizer: optim.GradientTransformation,
    *,
    compile: bool | None = False,
    device: torch.device | str = "cpu",
    trim: Callable[[dict], dict] | None = None,
    all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    precision: str | torch.dtype = "fp32",
    sharding: Sharding | None = None,
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

    ``precision`` (``"fp32"``, ``"bf16"``, ``"fp16"``): the dtype the loss and its gradient
    compute in (:func:`seqfunc.precision.in_precision`); the parameters, the gradient the
    optimizer sees and its state stay float32. An optimizer with a loss scale
    (:func:`seqfunc.loss_scale.dynamic_loss_scale`, for fp16) has the step differentiate the
    loss times its current scale; the metrics are unscaled.

    ``batch`` may be a list of micro-batches (gradient accumulation): see
    :func:`accumulated_value_and_grad`. They make one gradient, one all-reduce and one update.

    ``sharding`` (with ``all_reduce``, and a flattened optimizer whose clipping and finite
    checks sum over the group: :func:`seqfunc.runs.optimizer.make_optimizer`'s ``reduce``):
    sharded optimizer state (:mod:`seqfunc.sharding`). The gradient vector is reduce-scattered,
    the optimizer updates this process's slice of the parameters, its state holds only that
    slice's moments (:func:`seqfunc.sharding.slice_state`), and the new parameters are
    all-gathered.
    """
    compiled = resolve_compile(compile, device)
    step = _make_step(loss_fn, optimizer, compiled, all_reduce, precision, sharding)
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
    loss_fn: LossFn,
    optimizer: optim.GradientTransformation,
    compiled: bool,
    all_reduce=None,
    precision="fp32",
    sharding=None,
) -> Callable:
    if optimizer.flat_inner is not None:
        return _flat_step(loss_fn, optimizer.flat_inner, compiled, all_reduce, precision, sharding)
    if sharding is not None:
        raise ValueError("make_step: sharded optimizer state needs a flattened optimizer")
    objective = scaled_objective(in_precision(loss_fn, precision))
    value_and_grad = accumulated_value_and_grad(_value_and_grad(objective, compiled))

    def step(state: TrainState, batch: dict, key: torch.Tensor):
        scale = current_scale(state.opt_state)
        grads, (loss, aux) = value_and_grad(state.params, batch, key, scale)
        if all_reduce is not None:
            flat, unravel = ravel_tree(grads)
            flat, loss, aux = reduced(all_reduce, flat, loss, aux)
            grads = unravel(flat)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        metrics = _metrics(scale, grads, loss, aux)
        return TrainState(params, opt_state, state.step + 1), metrics

    if compiled:
        return compile_fn(step, dynamic=False)
    return step


def _flat_step(
    loss_fn: LossFn,
    inner: optim.GradientTransformation,
    compiled: bool,
    all_reduce=None,
    precision="fp32",
    sharding=None,
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
                core = _FlatCore(
                    loss_fn, inner, flat, unravel, compiled, all_reduce, precision, sharding
                )
        new_flat, opt_state, count, metrics = core(flat, state.opt_state, state.step, batch, key)
        params = core.unravel(new_flat)
        last = (params, new_flat)
        return TrainState(params, opt_state, count), metrics

    return step


class _FlatCore:
    """``(flat, opt_state, count, batch, key) -> (flat, opt_state, count, metrics)`` for one
    layout, compiled or eager. :func:`ravel_tree` returns one ``unravel`` per tree layout
    (structure and leaf shapes), so that function and the vector's dtype and device name it."""

    def __init__(
        self,
        loss_fn,
        inner,
        flat,
        unravel,
        compiled,
        all_reduce=None,
        precision="fp32",
        sharding=None,
    ):
        self.kind = (flat.dtype, flat.device)
        self.unravel = unravel  # also eagerly, each step: the tree of views of the new vector
        # the precision cast acts on the vector: one cast, not one per leaf
        loss_of_flat = in_precision(
            lambda flat, batch, key: loss_fn(unravel(flat), batch, key), precision
        )
        value_and_grad = accumulated_value_and_grad(
            _value_and_grad(scaled_objective(loss_of_flat), compiled)
        )

        def core(flat, opt_state, count, batch, key):
            scale = current_scale(opt_state)
            grads, (loss, aux) = value_and_grad(flat, batch, key, scale)
            if sharding is not None:
                return sharded_update(flat, grads, loss, aux, opt_state, count, scale)
            if all_reduce is not None:
                grads, loss, aux = reduced(all_reduce, grads, loss, aux)
            updates, opt_state = inner.update(grads, opt_state, flat)
            metrics = _metrics(scale, grads, loss, aux)
            return flat + updates, opt_state, count + 1, metrics

        def sharded_update(flat, grads, loss, aux, opt_state, count, scale):
            _, loss, aux = reduced(all_reduce, grads[:0], loss, aux)
            grads = sharding.reduce_scatter(sharding.padded(grads))  # this process's slice
            params = sharding.take(flat)
            updates, opt_state = inner.update(grads, opt_state, params)
            metrics = _metrics(scale, grads, loss, aux, all_reduce)
            new_flat = sharding.gather(params + updates, flat.numel())
            return new_flat, opt_state, count + 1, metrics

        self._run = compile_fn(core, dynamic=False) if compiled else core

    def fits(self, flat: torch.Tensor, unravel: Callable) -> bool:
        return unravel is self.unravel and (flat.dtype, flat.device) == self.kind

    def __call__(self, *args):
        return self._run(*args)
