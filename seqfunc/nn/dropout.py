"""Dropout driven by an explicit key (no global RNG)."""

from __future__ import annotations

import torch

from seqfunc import rng


def dropout(
    x: torch.Tensor, rate: float, *, key: rng.KeyArray | None, train: bool
) -> torch.Tensor:
    """Zero each entry with probability ``rate`` and rescale the rest by ``1 / (1 - rate)``.

    Identity when ``train`` is False or ``rate`` is 0. Training with ``rate > 0`` needs a key.
    """
    if not train or rate == 0.0:
        return x
    if key is None:
        raise ValueError(
            "dropout is active (train=True, rate > 0) but no key was given: "
            "pass key=seqfunc.rng.key(seed) to apply, or call it with train=False"
        )
    drop = rng.bernoulli(key, rate, x.shape)
    return (x / (1.0 - rate)).masked_fill(drop, 0.0)
