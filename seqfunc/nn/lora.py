"""LoRA: low-rank adapters beside a frozen base parameter tree.

A targeted 2-D weight ``W (d_out, d_in)`` of the base becomes ``W + scale * B @ A`` with
``A (rank, d_in)`` small and random and ``B (d_out, rank)`` zero at the start, so a fresh
adapter tree leaves the model unchanged. The adapters are a tree of their own, keyed like the
base without the final ``weight`` (``layers.0.attn.q.weight`` -> ``layers.0.attn.q.{a,b}``);
:func:`merge` is a pure function of both trees, which is what training differentiates.
Adapters are kept in float32 whatever the base's dtype; their product is cast to the weight's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from seqfunc import rng
from seqfunc.errors import ConfigError
from seqfunc.tree import flatten_dict, unflatten_dict

WEIGHT = "weight"


def adapted_modules(base: dict, targets: Sequence[str]) -> list[str]:
    """The modules of ``base`` whose 2-D ``weight`` a target names: a target matches a
    module path's last parts (``q`` matches ``layers.3.attn.q``; ``attn.out`` also works).
    A ConfigError names a target that matches nothing, with the modules there are."""
    modules = [
        name.removesuffix(f".{WEIGHT}")
        for name, tensor in flatten_dict(base).items()
        if name.endswith(f".{WEIGHT}") and tensor.ndim == 2
    ]
    chosen = []
    for target in targets:
        found = [m for m in modules if m == target or m.endswith(f".{target}")]
        if not found:
            names = sorted({m.split(".")[-1] for m in modules})
            raise ConfigError(
                f"lora_targets: {target!r} names no 2-D weight of the model "
                f"(its modules: {', '.join(names)})"
            )
        chosen += [m for m in found if m not in chosen]
    return sorted(chosen, key=modules.index)


def init_adapters(key: rng.KeyArray, base: dict, modules: Sequence[str], rank: int) -> dict:
    """A fresh adapter tree: for each module ``A ~ N(0, 1 / d_in)`` of shape ``(rank,
    d_in)`` (its own key) and ``B = 0`` of shape ``(d_out, rank)``, float32, on the weight's
    device."""
    flat = flatten_dict(base)
    adapters = {}
    for i, module in enumerate(modules):
        weight = flat[f"{module}.{WEIGHT}"]
        d_out, d_in = weight.shape
        a = rng.normal(rng.fold_in(key, i), (rank, d_in)).to(weight.device) / math.sqrt(d_in)
        adapters[f"{module}.a"] = a
        adapters[f"{module}.b"] = torch.zeros(d_out, rank, device=weight.device)
    return unflatten_dict(adapters)


def merge(base: dict, adapters: dict, scale: float) -> dict:
    """``base`` with ``W + scale * B @ A`` for each adapted weight: a tree of the base's
    structure (the unadapted tensors are the base's own). Adapters may carry leading member
    axes (under ``vmap`` they do not show)."""
    flat = flatten_dict(adapters)
    deltas = {
        name.removesuffix(".a"): (flat[name[:-2] + ".b"], a)
        for name, a in flat.items()
        if name.endswith(".a")
    }

    def rebuild(node, prefix: str):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        out = {}
        for key, child in items:
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(child, (dict, list, tuple)):
                out[key] = rebuild(child, path)
            elif key == WEIGHT and prefix in deltas:
                b, a = deltas[prefix]
                out[key] = child + (scale * (b @ a)).to(child.dtype)
            else:
                out[key] = child
        return out if isinstance(node, dict) else type(node)(out[i] for i in range(len(node)))

    return rebuild(base, "")
