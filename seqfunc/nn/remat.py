"""Recomputed activations: a block that keeps its inputs only and runs again in the backward.

    x = remat(block)(x, layer_params, key)     # block(x, params, key) -> (b, t, d)

The block's intermediate activations are not kept for the backward: the backward runs the
block again from its saved inputs and takes its vector-Jacobian product
(``torch.autograd.grad`` under plain autograd, :func:`torch.func.vjp` under torch.func's
transforms and compile). Activation memory drops to the blocks' inputs plus one block's
intermediates, for one more forward of each block.

The recomputation is exact: a block is a pure function of its inputs, and its dropout masks
are a hash of the key and the element's index (:mod:`seqfunc.rng`), so the second run draws
the masks of the first. Dropout's row offset (:func:`seqfunc.nn.dropout.global_rows`) is read
again in the backward, which the step runs inside the same block of rows.

``torch.utils.checkpoint`` does the same for plain autograd, but ``torch.func.grad`` (the
compiled step's and the members' step's gradient) refuses the saved-tensor hooks it relies
on. This is an ``autograd.Function`` instead: with ``setup_context`` (so ``torch.func``
transforms and ``vmap`` take it) eagerly, and in the older ``forward(ctx, ...)`` form while
``torch.compile`` traces, which dynamo traces into the step's one graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from seqfunc.tree import tree_flatten, tree_unflatten


def remat(block: Callable, enabled: bool = True) -> Callable:
    """``block`` whose activations are recomputed in the backward (``block`` itself when not
    ``enabled``). Its arguments are pytrees of tensors (or other values, passed through); it
    returns one tensor."""
    if not enabled:
        return block

    def recomputed(*args):
        leaves, spec = tree_flatten(args)
        tensors = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
        fixed = [None if i in tensors else x for i, x in enumerate(leaves)]

        def run(*tensor_leaves):
            full = list(fixed)
            for i, x in zip(tensors, tensor_leaves):
                full[i] = x
            return block(*tree_unflatten(full, spec))

        inputs = [leaves[i] for i in tensors]
        floating = tuple(x.is_floating_point() for x in inputs)
        function = _TracedRecompute if torch.compiler.is_compiling() else _Recompute
        return function.apply(run, floating, *inputs)

    return recomputed


def _input_grads(run: Callable, floating: tuple, inputs: list, grad_out: torch.Tensor) -> list:
    """The gradient of ``run(*inputs)`` towards ``grad_out`` for each floating input (None
    for the others), by running it again."""
    where = [i for i, f in enumerate(floating) if f]

    def of_floating(*xs):
        full = list(inputs)
        for i, x in zip(where, xs):
            full[i] = x
        return run(*full)

    primals = [inputs[i] for i in where]
    if _plain_autograd():
        # torch.func.vjp here took more memory than no recomputation at all (a GPT step at
        # context 1024, benchmarks/memory.py); plain autograd's grad takes what it should
        primals = [x.detach().requires_grad_() for x in primals]
        with torch.enable_grad():
            grads = torch.autograd.grad(of_floating(*primals), primals, grad_out)
    else:
        with torch.enable_grad():
            _, vjp = torch.func.vjp(of_floating, *primals)
            grads = vjp(grad_out)
    out = [None] * len(inputs)
    for i, g in zip(where, grads):
        out[i] = g
    return out


def _plain_autograd() -> bool:
    """Whether the backward runs under plain autograd: no torch.func transform, no tracing."""
    if torch.compiler.is_compiling():  # first: dynamo cannot trace the level query
        return False
    return torch._C._functorch.maybe_current_level() is None


class _Recompute(torch.autograd.Function):
    """Eager form: ``setup_context`` and a generated vmap rule, for torch.func's transforms."""

    generate_vmap_rule = True

    @staticmethod
    def forward(run, floating, *inputs):
        return run(*inputs)

    @staticmethod
    def setup_context(ctx, inputs, output):
        run, floating, *tensors = inputs
        ctx.run, ctx.floating = run, floating
        ctx.save_for_backward(*tensors)

    @staticmethod
    def backward(ctx, grad_out):
        grads = _input_grads(ctx.run, ctx.floating, list(ctx.saved_tensors), grad_out)
        return (None, None, *grads)


class _TracedRecompute(torch.autograd.Function):
    """The form dynamo traces whole (it does not trace a ``setup_context`` function that takes
    a callable argument)."""

    @staticmethod
    def forward(ctx, run, floating, *inputs):
        ctx.run, ctx.floating = run, floating
        ctx.save_for_backward(*inputs)
        return run(*inputs)

    @staticmethod
    def backward(ctx, grad_out):
        grads = _input_grads(ctx.run, ctx.floating, list(ctx.saved_tensors), grad_out)
        return (None, None, *grads)
