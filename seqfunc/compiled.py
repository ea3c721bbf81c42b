"""``torch.compile`` with a graph cache of the function's own."""

from __future__ import annotations

import types
from collections.abc import Callable

import torch


def compile_fn(fn: Callable, **options) -> Callable:
    """``torch.compile(fn, **options)`` on a copy of ``fn`` with its own code object.

    Dynamo keeps compiled graphs on the *code object*, at most eight per code object
    (``torch._dynamo.config.recompile_limit``). Closures made by one factory share their code:
    every step built by :func:`seqfunc.train.make_step` would share one cache, and the ninth
    model compiled in a process (a sweep, a test suite) would silently run eagerly. A copy of
    the code gives each compiled function a cache of its own.
    """
    own = types.FunctionType(
        fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    own.__kwdefaults__ = fn.__kwdefaults__
    return torch.compile(own, **options)
