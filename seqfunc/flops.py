"""Counting the multiplications of self-attention (assignment 002, question 1.4).

For ``X: (T, d)``, ``Q = X W_Q: (T, D)``, ``K = X W_K: (T, D)``, ``V = X W_V: (T, M)``, eq. 2
``softmax(Q K^T / sqrt(D)) V`` multiplies::

    Q K^T                 T * T * D     (T^2 dot products of length D)
    scaling by 1/sqrt(D)  T * T
    softmax normalising   T * T         (one division per weight; exp is not counted)
    weights @ V           T * T * M

so ``T^2 (D + M + 2)``, quadratic in the length. Eq. 1 (the projections) adds
``T d (2 D + M)``. ``torch.utils.flop_counter`` counts only the matrix products, as
2 FLOPs (multiply + add) per multiplication: ``2 T^2 (D + M)`` for eq. 2.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class AttentionMultiplications:
    """Multiplications of one attention layer by part (``tq`` queries, ``tk`` keys)."""

    scores: int  # Q K^T
    scale: int  # / sqrt(D)
    normalise: int  # softmax division
    weighted_sum: int  # weights @ V
    projections: int = 0  # eq. 1 (and the output projection of multi-head attention)

    @property
    def matmul(self) -> int:
        """The multiplications inside matrix products (what flop_counter sees, halved)."""
        return self.scores + self.weighted_sum + self.projections

    @property
    def total(self) -> int:
        return self.scores + self.scale + self.normalise + self.weighted_sum + self.projections


def self_attention_multiplications(
    T: int,
    D: int,
    M: int,
    *,
    d: int | None = None,
    tk: int | None = None,
    output_projection: int | None = None,
) -> AttentionMultiplications:
    """Multiplications of eq. 2 for ``T`` queries over ``tk`` keys (``T`` if None), query/key
    size ``D``, value size ``M``. With ``d`` (the input width) eq. 1's projections are added;
    with ``output_projection`` (its output width), a final ``(M -> width)`` linear map too."""
    tk = T if tk is None else tk
    projections = 0
    if d is not None:
        projections = T * d * D + tk * d * (D + M)
    if output_projection is not None:
        projections += T * M * output_projection
    return AttentionMultiplications(
        scores=T * tk * D,
        scale=T * tk,
        normalise=T * tk,
        weighted_sum=T * tk * M,
        projections=projections,
    )


def multi_head_attention_multiplications(
    T: int, d_model: int, heads: int, *, tk: int | None = None, projections: bool = True
) -> AttentionMultiplications:
    """The layer of :func:`seqfunc.nn.multi_head_attention`: ``heads`` heads of size
    ``d_model / heads`` (together the same matrix-product work as one head of ``d_model``)
    plus, with ``projections``, the q/k/v and output projections ``d_model -> d_model``."""
    tk = T if tk is None else tk
    per_head = self_attention_multiplications(T, d_model // heads, d_model // heads, tk=tk)
    return AttentionMultiplications(
        scores=heads * per_head.scores,
        scale=heads * per_head.scale,
        normalise=heads * per_head.normalise,
        weighted_sum=heads * per_head.weighted_sum,
        projections=(T * d_model * d_model + 2 * tk * d_model * d_model + T * d_model * d_model)
        if projections
        else 0,
    )
