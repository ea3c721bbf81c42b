"""A key/value cache for incremental decoding, as an explicit pytree.

Fixed-size, preallocated buffers plus a position index, so every decoding step has the same
tensor shapes and a compiled step never recompiles::

    cache = init_kv_cache(layers=4, batch=1, heads=4, max_len=576, head_dim=32)
    step = Extension(cache, q_len)        # step.positions: the new tokens' positions
    # per layer i: keys, values = step.layer(i, k_new, v_new)
    #              attend(q, keys, values, step.window.mask, causal=step.window.causal)
    cache = step.cache()

A write is pure by default (a new buffer; the argument is left untouched). ``donate=True``
writes into the buffer itself, as a donated buffer in JAX: one position costs one position
instead of a copy of the whole cache, and the cache passed in must not be used again.

Which slots a query reads (:func:`visible_window`): compiled, the whole buffer under a mask
that hides the slots not written yet (fixed shapes; masked scores get weight exactly 0, so the
result equals attention over the filled prefix); eagerly, where shapes are free, only the
filled prefix, which needs no mask for a single query.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


def init_kv_cache(
    *,
    layers: int,
    batch: int,
    heads: int,
    max_len: int,
    head_dim: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> dict:
    """``{"k": [(b, h, max_len, d)] * layers, "v": [...], "pos": 0-d int64}``, all zeros."""

    def zeros():
        return torch.zeros(batch, heads, max_len, head_dim, dtype=dtype, device=device)

    return {
        "k": [zeros() for _ in range(layers)],
        "v": [zeros() for _ in range(layers)],
        "pos": torch.zeros((), dtype=torch.int64, device=device),
    }


def write(
    buffer: torch.Tensor, new: torch.Tensor, pos: torch.Tensor, *, donate: bool = False
) -> torch.Tensor:
    """``buffer (b, h, T, d)`` with ``new (b, h, t, d)`` written at slots ``pos .. pos + t - 1``:
    a new tensor, or ``buffer`` itself, written in place, when ``donate``."""
    slots = pos + torch.arange(new.shape[2], device=new.device)
    if donate:
        return buffer.index_copy_(2, slots, new)
    return buffer.index_copy(2, slots, new)


def cached_causal_mask(pos: torch.Tensor, q_len: int, max_len: int) -> torch.Tensor:
    """``(q_len, max_len)``: query ``i`` (absolute position ``pos + i``) may attend slot ``j``
    iff ``j <= pos + i`` — causal, and blind to the slots not yet written."""
    device = pos.device
    query_pos = pos + torch.arange(q_len, device=device)
    return torch.arange(max_len, device=device)[None, :] <= query_pos[:, None]


class Window(NamedTuple):
    """The slots new queries read: the first ``length`` of the buffers, under ``mask``
    (``(q_len, length)``, True = may attend; None: all of them) or, with ``causal``, the
    attention kernels' causal rule (query ``i`` reads slots ``j <= i + length - q_len``)."""

    length: int
    mask: torch.Tensor | None = None
    causal: bool = False

    def read(self, buffer: torch.Tensor) -> torch.Tensor:
        """``buffer (b, h, T, d)`` -> the ``(b, h, length, d)`` slots read."""
        return buffer if self.length == buffer.shape[2] else buffer[:, :, : self.length]


def visible_window(pos: torch.Tensor, q_len: int, max_len: int) -> Window:
    """What ``q_len`` queries placed after the ``pos`` cached tokens read (module docstring):
    under ``torch.compile`` the whole ``max_len`` buffer and :func:`cached_causal_mask`;
    eagerly the ``pos + q_len`` filled slots, causally (a single query reads them all)."""
    if torch.compiler.is_compiling():
        return Window(max_len, mask=cached_causal_mask(pos, q_len, max_len))
    return Window(int(pos) + q_len, causal=q_len > 1)


def capacity(cache: dict) -> int:
    """How many positions the buffers hold."""
    return cache["k"][0].shape[2] if cache["k"] else 0


class Extension:
    """One extension of ``cache`` by ``q_len`` new tokens, the mechanism of a model's
    ``extend``: each layer writes its new keys and values (:meth:`layer`) and reads the
    :func:`visible_window`; :meth:`cache` is the cache afterwards. ``donate``: write into
    ``cache``'s buffers (:func:`write`)."""

    def __init__(self, cache: dict, q_len: int, *, donate: bool = False):
        self._before = cache
        self._donate = donate
        self._k: list[torch.Tensor] = []
        self._v: list[torch.Tensor] = []
        pos = cache["pos"]
        self.q_len = q_len
        #: ``(q_len,)`` int64: the absolute positions of the new tokens
        self.positions = pos + torch.arange(q_len, device=pos.device)
        self.window = visible_window(pos, q_len, capacity(cache))

    def layer(
        self, index: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write layer ``index``'s new ``k, v (b, h, q_len, d)`` (layers in order):
        the ``(b, h, window.length, d)`` keys and values its queries read."""
        pos = self._before["pos"]
        self._k.append(write(self._before["k"][index], k, pos, donate=self._donate))
        self._v.append(write(self._before["v"][index], v, pos, donate=self._donate))
        return self.window.read(self._k[-1]), self.window.read(self._v[-1])

    def cache(self) -> dict:
        """The cache holding the new tokens too, once every layer has written."""
        return {"k": self._k, "v": self._v, "pos": self._before["pos"] + self.q_len}
