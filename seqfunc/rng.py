"""Stateless, explicit random keys (JAX style) from integer tensor arithmetic.

A key is an ``int64`` tensor of shape ``(2,)`` holding two 32-bit words. Random draws are a
counter-based hash of (key, element index), so they

* are a pure function of the key: same key, same numbers, on any device;
* work under ``torch.func.vmap`` (a batch of keys gives independent draws per member);
* compile with ``torch.compile`` (only integer elementwise ops, no generator state).

Nothing here touches torch's global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "key",
    "split",
    "fold_in",
    "fold_in_range",
    "random_bits",
    "uniform",
    "normal",
    "bernoulli",
    "KeyArray",
]

KeyArray = torch.Tensor
_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche hash ("lowbias32") on int64 tensors holding values < 2**32."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def _hash(key: KeyArray, counter: torch.Tensor) -> torch.Tensor:
    """32 random bits per entry of ``counter`` for this key.

    One avalanche round over (counter offset by one key word, scrambled by the other): the
    fewest elementwise ops that still decorrelate neighbouring counters and keys, since this
    runs over every activation that dropout touches.
    """
    return _mix32((((counter + key[..., 1]) * _GOLDEN) & _MASK32) ^ key[..., 0])


# -- the same hash on int32 words -----------------------------------------------------------
# Bulk draws (dropout masks, initialisers) run the hash above on int32 tensors holding the
# same 32-bit patterns: half the memory traffic of int64, and a native vector multiply. Signed
# int32 multiplication and addition wrap modulo 2**32 like the masked int64 ones, and a logical
# right shift is the arithmetic one with the sign copies masked off, so every draw is
# bit-identical to the int64 formula (tests/test_rng.py checks it, under vmap and compile too).


def _i32(value: int) -> int:
    """A 32-bit word as the int32 with the same bits."""
    value &= _MASK32
    return value - (1 << 32) if value >= 1 << 31 else value


_GOLDEN_I32 = _i32(_GOLDEN)
_MUL1_I32 = _i32(0x7FEB352D)
_MUL2_I32 = _i32(0x846CA68B)
_SIGN_I32 = _i32(1 << 31)


def _bits32(key: KeyArray, shape: Sequence[int], offset: int = 0) -> torch.Tensor:
    """``_hash(key, offset + arange(numel))`` reshaped to ``shape``, as int32 bit patterns.

    After the first op every step updates a fresh temporary in place, and the counter is not
    kept: at most two tensors of ``shape`` are alive at once (the result and one shift).
    """
    k0, k1 = key.to(torch.int32).unbind(-1)
    start = k1 + _i32(offset) if offset else k1
    # out of place: under vmap the key is batched and the counter is not
    x = torch.arange(math.prod(shape), dtype=torch.int32, device=key.device).add(start)
    x.mul_(_GOLDEN_I32).bitwise_xor_(k0)
    x.bitwise_xor_(x.bitwise_right_shift(16).bitwise_and_(0xFFFF)).mul_(_MUL1_I32)
    x.bitwise_xor_(x.bitwise_right_shift(15).bitwise_and_(0x1FFFF)).mul_(_MUL2_I32)
    x.bitwise_xor_(x.bitwise_right_shift(16).bitwise_and_(0xFFFF))
    return x.reshape(tuple(shape))


def key(seed: int, device: torch.device | str | None = None) -> KeyArray:
    """A new key from an integer seed: ``(2,)`` int64."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"key(seed): seed must be an int, got {type(seed).__name__}")
    lo, hi = seed & _MASK32, (seed >> 32) & _MASK32
    words = torch.tensor([lo, hi], dtype=torch.int64, device=device)
    counter = torch.tensor([0, 1], dtype=torch.int64, device=device)
    return _mix32(_mix32(words ^ (counter * _GOLDEN & _MASK32)) + counter)


def split(key: KeyArray, num: int = 2) -> KeyArray:
    """``num`` independent keys derived from ``key``: shape ``(num, 2)``.

    Unpack with ``k1, k2 = split(key)``.
    """
    start = 0x5BD1E995
    counter = torch.arange(start, start + 2 * num, dtype=torch.int64, device=key.device)
    return _hash(key, counter).reshape(num, 2)


def fold_in(key: KeyArray, data: int) -> KeyArray:
    """A key derived from ``key`` and an integer (a layer index, a step, an epoch).

    ``key`` may be a stack of keys ``(..., 2)``: each is folded with ``data`` (the keys of
    an ensemble's members in one call)."""
    data = int(data) & _MASK32
    counter = torch.tensor([2 * data, 2 * data + 1], dtype=torch.int64, device=key.device)
    return _hash(_mix32(key ^ 0x2545F491).unsqueeze(-2), counter)


def fold_in_range(key: KeyArray, num: int) -> KeyArray:
    """``fold_in(key, i)`` for ``i`` in ``range(num)``, in one call: shape ``(num, 2)`` (the
    keys of a loop's steps, without a hash call per step)."""
    data = torch.arange(num, dtype=torch.int64, device=key.device) & _MASK32
    counter = 2 * data[:, None] + torch.arange(2, device=key.device)
    return _hash(_mix32(key ^ 0x2545F491), counter)


def random_bits(key: KeyArray, shape: Sequence[int]) -> torch.Tensor:
    """Uniform 32-bit integers in ``[0, 2**32)`` as int64, of the given shape."""
    return _bits32(key, shape).to(torch.int64) & _MASK32


def uniform(
    key: KeyArray,
    shape: Sequence[int],
    *,
    low: float = 0.0,
    high: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform floats in ``[low, high)`` (24 bits of resolution)."""
    unit = (_bits32(key, shape) >> 8).bitwise_and_(0xFFFFFF).to(dtype) * (2.0**-24)
    return low + (high - low) * unit


def normal(
    key: KeyArray, shape: Sequence[int], *, std: float = 1.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Standard normal draws (Box-Muller), scaled by ``std``."""
    k1, k2 = split(key)
    u1 = uniform(k1, shape, dtype=torch.float32)
    u2 = uniform(k2, shape, dtype=torch.float32)
    radius = torch.sqrt(-2.0 * torch.log1p(-u1))  # 1 - u1 is in (0, 1]: log is finite
    return (std * radius * torch.cos(2.0 * math.pi * u2)).to(dtype)


def bernoulli(
    key: KeyArray, p: float | torch.Tensor, shape: Sequence[int], *, offset: int = 0
) -> torch.Tensor:
    """Boolean tensor, True with probability ``p`` (exact to 2**-32): a number, or a 0-d
    float64 tensor (e.g. each member's rate under ``vmap``), which draws the same mask as
    that number.

    ``offset``: the elements from ``offset`` on of a longer draw with the same key, i.e.
    ``bernoulli(key, p, (offset + n,))[offset:].reshape(shape)`` (``n`` elements in ``shape``)
    without drawing the first ``offset``."""
    if isinstance(p, torch.Tensor):
        threshold = torch.round(p.to(torch.float64) * 2**32).to(torch.int64)
    else:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"bernoulli: p must be in [0, 1], got {p}")
        threshold = int(round(p * 2**32))
        if threshold >= 2**32:
            return torch.ones(tuple(shape), dtype=torch.bool, device=key.device)
    # bits < threshold as unsigned words: flip the sign bit of both sides, compare signed
    # (a tensor threshold is int64: p = 1 gives 2**31, above every int32)
    return _bits32(key, shape, offset).bitwise_xor_(_SIGN_I32) < threshold - 2**31
