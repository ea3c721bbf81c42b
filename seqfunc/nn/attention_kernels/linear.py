"""Linear (kernel) attention, Katharopoulos et al. 2020: eq. 3 with ``sim(q, k) =
phi(q) . phi(k)``, ``phi(x) = elu(x) + 1``, regrouped so no ``(tq, tk)`` matrix is built::

    V'_i = phi(Q_i) (sum_j phi(K_j)^T V_j) / phi(Q_i) (sum_j phi(K_j)^T)

Non-causal: the two sums are computed once, time ``O(t d dv)``. Causal: they are prefix sums
over the keys, computed per block of ``chunk`` positions (Katharopoulos et al.'s chunked form):
within a block a ``(chunk, chunk)`` lower-triangular product, across blocks prefix sums of
the per-block ``(d, dv)`` sums, so time ``O(t (chunk d + d dv))`` and memory
``O(t chunk + (t / chunk) d dv)``, both linear in ``t``, instead of one ``(d, dv)`` state per
position.

Masks: only what the regrouping can honour. A key-padding mask (query axis of size 1,
e.g. ``(b, 1, 1, tk)``), ``causal=True``, or a full mask that is exactly *causal AND
key-padding* (what a decoder builds; recognised and split). Any other mask raises.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange

from seqfunc.config import positive
from seqfunc.nn.attention_kernels.base import AttentionKernel, causal_block, check_mask
from seqfunc.nn.attention_kernels.similarity import similarity_weights


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """``phi(x) = elu(x) + 1 > 0``."""
    return F.elu(x) + 1.0


def split_causal_padding(
    mask: torch.Tensor | None, tq: int, tk: int, causal: bool
) -> tuple[torch.Tensor | None, bool]:
    """``(key_padding (b, h, 1, tk) or None, causal)`` equivalent to ``mask`` (+ ``causal``).

    Raises ``ValueError`` for a mask that is not key padding, causal, or their AND."""
    if mask is None or mask.shape[2] == 1:
        return mask, causal
    # A decoder mask causal & padding: its last query row sees every unpadded key.
    padding = mask[:, :, -1:, :]
    causal_part = causal_block(0, tq, 0, tk, tk - tq, mask.device)
    if tq <= tk and bool((mask == (causal_part & padding)).all()):
        return padding, True
    raise ValueError(
        f"linear attention cannot honour an attention mask of shape {tuple(mask.shape)} that "
        "is not a key-padding mask (b, h, 1, tk), a causal mask, or their AND; use "
        "causal=True and/or a key-padding mask"
    )


def causal_prefix_attention(
    fq: torch.Tensor, fk: torch.Tensor, v: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Numerator ``(b, h, t, dv)`` and denominator ``(b, h, t)`` of causal linear attention
    for ``t`` queries over the same ``t`` positions of features ``fq``, ``fk`` ``(b, h, t, d)``."""
    t = fq.shape[2]
    pad = -t % chunk
    if pad:  # zero features at the end: they add nothing, and their outputs are dropped
        fq, fk, v = (F.pad(x, (0, 0, 0, pad)) for x in (fq, fk, v))
    blocks = "b h (n c) d -> b h n c d"
    fq, fk, v = (rearrange(x, blocks, c=chunk) for x in (fq, fk, v))
    # Across blocks: the sums over every earlier block (exclusive prefix sums).
    kv = torch.einsum("bhncd,bhncm->bhndm", fk, v)
    z = fk.sum(dim=3)
    kv_before, z_before = torch.cumsum(kv, 2) - kv, torch.cumsum(z, 2) - z
    num = torch.einsum("bhncd,bhndm->bhncm", fq, kv_before)
    den = torch.einsum("bhncd,bhnd->bhnc", fq, z_before)
    # Within a block: the causal (chunk, chunk) similarities.
    tril = torch.ones(chunk, chunk, dtype=torch.bool, device=fq.device).tril()
    a = torch.einsum("bhncd,bhnkd->bhnck", fq, fk) * tril
    num = num + torch.einsum("bhnck,bhnkm->bhncm", a, v)
    den = den + a.sum(dim=-1)
    num = rearrange(num, "b h n c m -> b h (n c) m")[:, :, :t]
    return num, rearrange(den, "b h n c -> b h (n c)")[:, :, :t]


@attrs.frozen
class Linear(AttentionKernel):
    """Linear attention with the ``elu + 1`` feature map (time and memory linear in length);
    ``chunk``: the block size of the causal computation."""

    name = "linear"
    chunk: int = attrs.field(default=64, validator=positive)

    def weights(self, params, q, k, mask=None, *, causal=False):
        mask = check_mask(mask, q, k)
        padding, causal = split_causal_padding(mask, q.shape[2], k.shape[2], causal)
        sim = lambda a, b: torch.einsum("bhqd,bhkd->bhqk", elu_feature_map(a), elu_feature_map(b))
        return similarity_weights(q, k, sim, padding, causal=causal)

    def apply(self, params, q, k, v, mask=None, *, causal=False):
        tq, tk = q.shape[2], k.shape[2]
        padding, causal = split_causal_padding(check_mask(mask, q, k), tq, tk, causal)
        fq, fk = elu_feature_map(q), elu_feature_map(k)
        if padding is not None:
            fk = fk * padding[:, :, 0, :, None]  # padded keys add nothing to either sum
        if not causal:
            kv = torch.einsum("bhkd,bhkm->bhdm", fk, v)
            num = torch.einsum("bhqd,bhdm->bhqm", fq, kv)
            den = torch.einsum("bhqd,bhd->bhq", fq, fk.sum(dim=2))
        else:
            if tq > tk:
                raise ValueError(f"causal linear attention needs tq <= tk, got {tq} > {tk}")
            # Query i sees keys j <= i + tk - tq: the queries are the last tq positions.
            if tq < tk:
                fq = F.pad(fq, (0, 0, tk - tq, 0))
            num, den = causal_prefix_attention(fq, fk, v, self.chunk)
            num, den = num[:, :, tk - tq :], den[:, :, tk - tq :]
        # den is 0 only where no key is allowed; num is 0 there too.
        return num / torch.where(den > 0, den, torch.ones_like(den))[..., None]
