"""seqfunc: sequence models as pure functions over parameter pytrees, trained with torch.func.

The stable public face is the modules below; everything else is reachable by its module path
(``seqfunc.models``, ``seqfunc.data``, ``seqfunc.tasks``, ``seqfunc.runs``, ...).

The names load on first use (PEP 562): ``import seqfunc`` does not import torch, so the
``seqfunc`` command imports it inside its own error handling (Ctrl-C while torch loads exits
130 without a traceback) and ``seqfunc --version`` answers at once.
"""

import importlib

__version__ = "0.1.0"

__all__ = ["metrics", "nn", "optim", "rng", "tree", "TrainState", "init_state", "make_step"]

_MODULES = ("metrics", "nn", "optim", "rng", "tree")
_FROM_TRAIN = ("TrainState", "init_state", "make_step")


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"seqfunc.{name}")
    if name in _FROM_TRAIN:
        return getattr(importlib.import_module("seqfunc.train"), name)
    raise AttributeError(f"module 'seqfunc' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
