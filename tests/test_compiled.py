"""compile_fn gives every compiled function a graph cache of its own."""

import torch
from torch._dynamo.utils import counters

from seqfunc.compiled import compile_fn


def _scaled_sine(scale):
    def f(x, *, shift=0.0):
        return (x * scale + shift).sin()

    return f


def test_closures_of_one_factory_each_get_a_graph_past_dynamos_limit():
    """Twelve closures sharing one code object: plain torch.compile stops compiling at dynamo's
    recompile limit (8 per code object) and runs the rest eagerly; compile_fn compiles all
    twelve, each giving the eager result."""
    torch._dynamo.reset()
    counters.clear()
    x = torch.linspace(-1, 1, 5)
    for i in range(12):
        f = _scaled_sine(float(i))
        torch.testing.assert_close(compile_fn(f, dynamic=False)(x, shift=0.5), f(x, shift=0.5))
    assert counters["stats"]["unique_graphs"] == 12
