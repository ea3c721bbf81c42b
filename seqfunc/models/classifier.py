"""Sequence classifiers of assignment 004 (parts 2-3): one model, four registered presets.

    tokens (b, t) -> embedding (+ learned positions) -> mixer -> masked global pool -> linear

Mixers: ``none`` (the baseline), ``simple`` (parameter-free self-attention), ``attention``
(one multi-head self-attention layer: separate key/query/value projections as one packed
matrix, scaling by sqrt(d/h), heads by einops, output projection; no residual, as the seed's
question 6) and ``transformer`` (``blocks`` transformer blocks: layer norm, 4x ReLU
feed-forward, residuals, dropout; post-norm, or pre-norm with ``norm_first``). Pools:
``mean``, ``max`` and ``select`` (the first position). Padding never changes a prediction:
attention never attends to padding and the pools skip it.

Registered presets (``seqfunc train DATASET --model NAME``): ``baseline`` (mean pool, 300-d),
``simple-attention`` and ``attention`` (select pool, 64-d), ``transformer-classifier``
(3 blocks, positions, select pool, 64-d). Any field can be overridden (``-m pool=max``).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from seqfunc import nn, rng
from seqfunc.config import (
    ConfigError,
    check_divisible,
    dropout_field,
    non_negative,
    one_of,
    positive,
)
from seqfunc.nn.pooling import POOLS, pool

MIXERS = ("none", "simple", "attention", "transformer")


@attrs.frozen
class ClassifierConfig:
    vocab_size: int = attrs.field(validator=positive)
    pad_id: int = attrs.field(validator=non_negative)
    num_classes: int = attrs.field(default=2, validator=positive)
    mixer: str = attrs.field(default="none", validator=one_of(MIXERS))
    pool: str = attrs.field(default="mean", validator=one_of(POOLS))
    d_model: int = attrs.field(default=300, validator=positive)
    positions: bool = False
    max_len: int = attrs.field(default=512, validator=positive)  # size of the position table
    heads: int = attrs.field(default=4, validator=positive)
    blocks: int = attrs.field(default=3, validator=positive)
    d_ff: int | None = attrs.field(default=None, validator=positive)  # None: 4 d_model
    dropout: float = dropout_field(0.0)
    norm_first: bool = False
    embed_std: float = attrs.field(default=1.0, validator=positive)
    #: attention kernel of the ``attention``/``transformer`` mixers (seqfunc.nn.attention_kernels).
    #: "full" writes the softmax out with einsum, which vmap batches natively (ensembles);
    #: "dot" is torch's fused kernel, which vmap runs member by member.
    kernel: str = "full"

    def __attrs_post_init__(self):
        if self.mixer in ("attention", "transformer"):
            check_divisible(self, "d_model", "heads")
        if self.pad_id >= self.vocab_size:
            raise ConfigError(f"ClassifierConfig.pad_id={self.pad_id}: must be < vocab_size")


class SequenceClassifier:
    """``apply(params, tokens (b, t)) -> logits (b, num_classes)``; stateless."""

    name: ClassVar[str] = "classifier"
    task_kinds: ClassVar[tuple[str, ...]] = ("classification",)
    Config: ClassVar[type] = ClassifierConfig
    #: The preset's fields, applied before the caller's overrides.
    defaults: ClassVar[dict] = {}

    def __init__(self, config: ClassifierConfig):
        self.config = config
        self.block_options = nn.BlockOptions(
            heads=config.heads,
            dropout=config.dropout,
            norm_first=config.norm_first,
            attention=config.kernel,
        )

    @classmethod
    def config_for(cls, dataset, **overrides) -> ClassifierConfig:
        fields = dict(
            vocab_size=len(dataset.vocab),
            pad_id=dataset.pad_id,
            num_classes=len(dataset.classes),
            max_len=dataset.config.max_len,
        )
        return ClassifierConfig(**{**fields, **cls.defaults, **overrides})

    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        k_emb, k_pos, k_mix, k_out = rng.split(key, 4)
        params = {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.d_model, std=c.embed_std),
            "out": nn.init_linear(k_out, c.d_model, c.num_classes),
        }
        if c.positions:
            params["pos"] = nn.init_embedding(k_pos, c.max_len, c.d_model, std=c.embed_std)
        if c.mixer == "attention":
            params["attn"] = nn.init_multi_head_attention(
                k_mix, c.d_model, kernel=c.kernel, heads=c.heads
            )
        elif c.mixer == "transformer":
            params["encoder"] = nn.init_encoder(
                k_mix,
                c.blocks,
                c.d_model,
                c.d_ff or 4 * c.d_model,
                attention=c.kernel,
                heads=c.heads,
            )
        return params

    def features(self, params, tokens, *, key=None, train=False) -> torch.Tensor:
        """The pooled representation ``(b, d_model)`` the output layer reads."""
        c = self.config
        k_emb, k_mix = (None, None) if key is None else rng.split(key)
        mask = tokens != c.pad_id
        x = nn.embedding(params["embed"], tokens)
        if c.positions:
            if tokens.shape[1] > c.max_len:
                raise ValueError(
                    f"{tokens.shape[1]} tokens, but the position table has {c.max_len}"
                )
            x = x + params["pos"]["weight"][: tokens.shape[1]]
        x = nn.dropout(x, c.dropout, key=k_emb, train=train)
        if c.mixer == "simple":  # assignment 004 q4: no parameters, no scaling, one head
            x = nn.multi_head_attention(
                {}, x, heads=1, mask=mask[:, None, None, :], kernel="simple"
            )
        elif c.mixer == "attention":
            x = nn.multi_head_attention(
                params["attn"],
                x,
                heads=c.heads,
                mask=mask[:, None, None, :],
                kernel=self.block_options.attention,
            )
        elif c.mixer == "transformer":
            x = nn.encoder(
                params["encoder"],
                x,
                opts=self.block_options,
                mask=mask[:, None, None, :],
                key=k_mix,
                train=train,
            )
        return pool(x, mask, c.pool)

    def apply(self, params, tokens, *, key=None, train=False) -> torch.Tensor:
        return nn.linear(params["out"], self.features(params, tokens, key=key, train=train))


class BaselineClassifier(SequenceClassifier):
    """Embedding -> global pool -> linear (seed question 2)."""

    name: ClassVar[str] = "baseline"
    defaults: ClassVar[dict] = {"mixer": "none", "pool": "mean", "d_model": 300}


class SimpleAttentionClassifier(SequenceClassifier):
    """One layer of parameter-free self-attention (seed questions 4-5)."""

    name: ClassVar[str] = "simple-attention"
    defaults: ClassVar[dict] = {"mixer": "simple", "pool": "select", "d_model": 64}


class AttentionClassifier(SequenceClassifier):
    """One layer of full multi-head self-attention (seed questions 6-8)."""

    name: ClassVar[str] = "attention"
    defaults: ClassVar[dict] = {"mixer": "attention", "pool": "select", "d_model": 64}


class TransformerClassifier(SequenceClassifier):
    """``blocks`` transformer blocks with learned positions, then a pool (seed question 9)."""

    name: ClassVar[str] = "transformer-classifier"
    defaults: ClassVar[dict] = {
        "mixer": "transformer",
        "pool": "select",
        "d_model": 64,
        "positions": True,
        "blocks": 3,
    }
