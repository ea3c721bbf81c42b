"""Additive (Bahdanau) attention as in d2l: ``score(q, k) = w_v . tanh(W_q q + W_k k)``."""

from __future__ import annotations

import math

import attrs
import torch

from seqfunc import rng
from seqfunc.config import positive
from seqfunc.nn.attention_kernels.base import (
    AttentionKernel,
    check_mask,
    masked_softmax,
    with_causal,
)


@attrs.frozen
class Additive(AttentionKernel):
    """One additive scorer per head with ``hidden`` units (default: the head size).

    Params ``w_q, w_k: (h, d, hidden)``, ``w_v: (h, hidden)``. Time and memory grow as
    ``tq * tk * hidden`` (the tanh features of every pair are built): the reason the
    Transformer uses dot products. Accepts any mask broadcastable to ``(b, h, tq, tk)``.
    """

    name = "additive"
    hidden: int | None = attrs.field(default=None, validator=positive)

    def init(self, key, heads, d_head):
        hidden = self.hidden or d_head
        k1, k2, k3 = rng.split(key, 3)
        bound = math.sqrt(6.0 / (d_head + hidden))  # Xavier uniform, as the linear layers
        return {
            "w_q": rng.uniform(k1, (heads, d_head, hidden), low=-bound, high=bound),
            "w_k": rng.uniform(k2, (heads, d_head, hidden), low=-bound, high=bound),
            "w_v": rng.uniform(
                k3, (heads, hidden), low=-math.sqrt(3 / hidden), high=math.sqrt(3 / hidden)
            ),
        }

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = with_causal(check_mask(mask, q, k), q.shape[2], k.shape[2], causal, q.device)
        fq = torch.einsum("bhqd,hdn->bhqn", q, params["w_q"])
        fk = torch.einsum("bhkd,hdn->bhkn", k, params["w_k"])
        features = torch.tanh(fq[:, :, :, None, :] + fk[:, :, None, :, :])  # (b, h, tq, tk, n)
        scores = torch.einsum("bhqkn,hn->bhqk", features, params["w_v"])
        return masked_softmax(scores, mask)

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        return torch.einsum("bhqk,bhkd->bhqd", self.weights(params, q, k, mask, causal=causal), v)
