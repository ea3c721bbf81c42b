"""Interchangeable attention kernels behind one interface, chosen by name.

``attention_kernel(spec)`` builds a kernel from its name (``"dot"``), a dict with ``kind`` and
the kernel's options (``{"kind": "window", "window": 32}``) or an existing kernel. Kernels are
frozen attrs classes, so a bad option (``window=0``) fails when the kernel is built, and an
unknown name lists the known ones. See :mod:`.base` for the interface and the mask contract.

=========  ==========================================  =====================  ============
name       what                                        options                memory
=========  ==========================================  =====================  ============
dot        torch's fused scaled_dot_product_attention  -                      (see dot.py)
full       softmax attention, weights materialised     -                      tq * tk
additive   Bahdanau / d2l additive scores              hidden                 tq * tk * n
simple     parameter-free softmax(x x^T) x (assignment 004)  -                      tq * tk
linear     elu+1 feature-map (kernel) attention        -                      t * d * dv
window     sliding-window (local) attention            window                 t * window
chunked    exact attention, online softmax in blocks   chunk                  t * chunk
=========  ==========================================  =====================  ============
"""

from __future__ import annotations

from typing import Any

import attrs

from seqfunc.config import ConfigError
from seqfunc.nn.attention_kernels.additive import Additive
from seqfunc.nn.attention_kernels.base import AttentionKernel
from seqfunc.nn.attention_kernels.chunked import Chunked, chunked_attention
from seqfunc.nn.attention_kernels.dot import DotProduct
from seqfunc.nn.attention_kernels.full import FullSoftmax
from seqfunc.nn.attention_kernels.linear import Linear
from seqfunc.nn.attention_kernels.similarity import exp_similarity, similarity_attention
from seqfunc.nn.attention_kernels.simple import Simple
from seqfunc.nn.attention_kernels.window import SlidingWindow

#: kernel name -> class
KERNELS: dict[str, type[AttentionKernel]] = {
    cls.name: cls
    for cls in (DotProduct, FullSoftmax, Additive, Simple, Linear, SlidingWindow, Chunked)
}

#: One default-option instance per name: a name resolves without building an attrs object,
#: which inside a torch.compile'd function would be a graph break.
_DEFAULT_INSTANCES: dict[str, AttentionKernel] = {name: cls() for name, cls in KERNELS.items()}


def attention_kernel(spec: Any = "dot") -> AttentionKernel:
    """A kernel from ``"name"``, ``{"kind": name, **options}`` or a kernel (returned as is).

    Raises :class:`~seqfunc.config.ConfigError` naming the known kernels or the bad option."""
    if isinstance(spec, AttentionKernel):
        return spec
    if isinstance(spec, str):
        if spec in _DEFAULT_INSTANCES:
            return _DEFAULT_INSTANCES[spec]
        name, options = spec, {}
    elif isinstance(spec, dict):
        options = dict(spec)
        name = options.pop("kind", None)
        if name is None:
            raise ConfigError(
                f"attention={spec!r}: a dict needs a 'kind' (one of {', '.join(KERNELS)})"
            )
    else:
        raise ConfigError(
            f"attention={spec!r}: expected a kernel name or a dict with 'kind', got "
            f"{type(spec).__name__}"
        )
    cls = KERNELS.get(name)
    if cls is None:
        raise ConfigError(f"attention kind {name!r} is unknown; known kinds: {', '.join(KERNELS)}")
    fields = {a.name for a in attrs.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        allowed = ", ".join(sorted(fields)) or "none"
        raise ConfigError(
            f"attention kind {name!r}: unknown option(s) {', '.join(unknown)}; its options: {allowed}"
        )
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:  # attrs validators raise ConfigError (a ValueError)
        raise ConfigError(f"attention kind {name!r}: {exc}") from None


def validate_attention(instance, attribute, value) -> None:
    """attrs validator for a config field holding a kernel spec (kept in its JSON form)."""
    try:
        attention_kernel(value)
    except ConfigError as exc:
        raise ConfigError(f"{type(instance).__name__}.{attribute.name}: {exc}") from None


__all__ = [
    "AttentionKernel",
    "KERNELS",
    "attention_kernel",
    "validate_attention",
    "Additive",
    "Chunked",
    "DotProduct",
    "FullSoftmax",
    "Linear",
    "Simple",
    "SlidingWindow",
    "chunked_attention",
    "exp_similarity",
    "similarity_attention",
]
