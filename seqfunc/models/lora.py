"""A model whose parameters are LoRA adapters over another model's frozen parameters.

``LoRAModel(base_model, base_params, rank=8, alpha=16, targets=("q", "v"))`` is a model like
any other: ``init(key)`` returns the adapter tree (:mod:`seqfunc.nn.lora`), and every method
of the base model that takes ``params`` first (``apply``, ``extend``, ``init_cache``, ...)
takes the adapters instead and calls the base with ``merge(base_params, adapters)``. So the
step, the loop, members (vmap), checkpoints and evaluation see the adapters as "the params":
the optimizer state and the checkpoints hold the adapters only, and the base, closed over,
is shared by every member rather than stacked.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

from seqfunc import rng
from seqfunc.nn import lora


class LoRAModel:
    def __init__(
        self,
        base_model,
        base_params: dict,
        *,
        rank: int,
        alpha: float,
        targets: Sequence[str],
    ):
        self.base_model = base_model
        self.base_params = base_params
        self.rank = rank
        self.scale = alpha / rank
        self.modules = lora.adapted_modules(base_params, targets)

    def init(self, key: rng.KeyArray) -> dict:
        """A fresh adapter tree: the merged model equals the base model."""
        return lora.init_adapters(key, self.base_params, self.modules, self.rank)

    def merged(self, adapters: dict) -> dict:
        """The base model's parameters with the adapters merged in."""
        return lora.merge(self.base_params, adapters, self.scale)

    def __getattr__(self, name: str):
        attr = getattr(self.base_model, name)
        if not callable(attr) or inspect.isclass(attr) or not _takes_params_first(attr):
            return attr

        @functools.wraps(attr)
        def with_merged(adapters, *args, **kwargs):
            return attr(self.merged(adapters), *args, **kwargs)

        return with_merged


def _takes_params_first(method) -> bool:
    try:
        first = next(iter(inspect.signature(method).parameters), None)
    except (TypeError, ValueError):
        return False
    return first == "params"
