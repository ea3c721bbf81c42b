"""Token embedding table."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqfunc import rng


def init_embedding(key: rng.KeyArray, vocab_size: int, dim: int, *, std: float = 1.0) -> dict:
    """``{"weight": (vocab_size, dim)}`` drawn from N(0, std^2), as ``torch.nn.Embedding``."""
    return {"weight": rng.normal(key, (vocab_size, dim), std=std)}


def embedding(params: dict, tokens: torch.Tensor) -> torch.Tensor:
    """``tokens``: ``(...)`` integer ids -> ``(..., dim)``."""
    return F.embedding(tokens, params["weight"])
