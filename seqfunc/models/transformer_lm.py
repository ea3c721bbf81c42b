"""Assignment 002's ``TransformerModel`` (the PyTorch word-level language-model tutorial), as pure
functions:

    src (b, t) -> embedding * sqrt(d) -> + sinusoidal encoding -> dropout
               -> N ``TransformerEncoderLayer`` s under a causal mask (post-norm, or pre-norm
                  with ``norm_first``; no final norm, as ``TransformerEncoder(layers, N)``)
               -> linear decoder -> logits (b, t, V)

Initialisation (``init="torch"``, the default) is the module's, tensor by tensor: the tutorial's
``init_weights`` (embedding and decoder weight U(-0.1, 0.1), decoder bias 0) and
``nn.TransformerEncoderLayer``'s own: attention in-projection xavier-uniform over the packed
``(3 d, d)`` matrix with zero bias, out-projection U(+-1/sqrt(d)) with zero bias, feed-forward
weights and biases U(+-1/sqrt(fan_in)), layer norms 1 and 0. Dropout sits where the module
has it: after the positional encoding, on the attention weights, after each sublayer and after
the feed-forward activation. (``nn.TransformerEncoder`` deep-copies one layer, so its layers
start equal; here each layer draws its own tensors from the same distributions.) (Assignment 002's
``generate`` called the model with no mask, so it was not causal at generation time; here the
causal mask is always applied.)
"""

from __future__ import annotations

import math
from typing import ClassVar

import attrs
import torch

from seqfunc import nn, rng
from seqfunc.config import (
    ConfigError,
    check_divisible,
    dropout_field,
    from_dict,
    non_negative,
    positive,
)
from seqfunc.nn.linear import LINEAR_INITS

INIT_RANGE = 0.1


@attrs.frozen
class TransformerLMConfig:
    vocab_size: int = attrs.field(validator=positive)
    d_model: int = attrs.field(default=200, validator=positive)  # seed: ninp in [200, 250]
    heads: int = attrs.field(default=2, validator=positive)  # nhead in [2, 4]
    d_ff: int = attrs.field(default=200, validator=positive)  # nhid in [200, 250]
    layers: int = attrs.field(default=2, validator=non_negative)  # nlayers in [2, 4]
    dropout: float = dropout_field(0.2)  # [0.0, 0.3]
    norm_first: bool = False
    #: "torch": the module's initialisation (see the module docstring); "xavier": xavier
    #: weights and zero biases in the encoder layers
    init: str = "torch"
    #: recompute each layer's activations in the backward instead of keeping them
    remat: bool = False

    def __attrs_post_init__(self):
        check_divisible(self, "d_model", "heads")
        if self.init not in LINEAR_INITS:
            raise ConfigError(
                f"TransformerLMConfig.init={self.init!r}: must be one of {', '.join(LINEAR_INITS)}"
            )


class TransformerLM:
    name: ClassVar[str] = "transformer_lm"
    task_kinds: ClassVar[tuple[str, ...]] = ("language_model",)
    Config: ClassVar[type] = TransformerLMConfig

    def __init__(self, config: TransformerLMConfig):
        self.config = config
        self.block_options = nn.BlockOptions(
            heads=config.heads,
            dropout=config.dropout,
            attention_dropout=config.dropout,
            norm_first=config.norm_first,
            activation="relu",
            remat=config.remat,
        )

    @classmethod
    def config_for(cls, dataset, **overrides) -> TransformerLMConfig:
        return from_dict(
            TransformerLMConfig,
            {"vocab_size": len(dataset.vocab), **overrides},
            where="model options",
        )

    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        k_emb, k_layers, k_dec = rng.split(key, 3)
        layer_keys = rng.split(k_layers, c.layers) if c.layers else []
        return {
            "encoder": {
                "weight": rng.uniform(
                    k_emb, (c.vocab_size, c.d_model), low=-INIT_RANGE, high=INIT_RANGE
                )
            },
            "layers": [
                nn.init_encoder_layer(k, c.d_model, c.d_ff, init=c.init) for k in layer_keys
            ],
            "decoder": {
                "weight": rng.uniform(
                    k_dec, (c.vocab_size, c.d_model), low=-INIT_RANGE, high=INIT_RANGE
                ),
                "bias": torch.zeros(c.vocab_size),
            },
        }

    def apply(self, params, src: torch.Tensor, *, key=None, train: bool = False) -> torch.Tensor:
        """``src (b, t)`` -> logits ``(b, t, vocab)``."""
        return self.head(params, self.features(params, src, key=key, train=train))

    def features(self, params, src: torch.Tensor, *, key=None, train: bool = False) -> torch.Tensor:
        """``src (b, t)`` -> the last encoder layer's outputs ``(b, t, d_model)``, before
        :meth:`head`."""
        c = self.config
        keys = list(rng.split(key, c.layers + 1)) if key is not None else [None] * (c.layers + 1)
        x = nn.embedding(params["encoder"], src) * math.sqrt(c.d_model)
        x = nn.dropout(nn.add_sinusoidal(x), c.dropout, key=keys[-1], train=train)
        mask = nn.causal_mask(src.shape[1], device=src.device)
        return nn.encoder_layers(
            params["layers"], x, opts=self.block_options, mask=mask, keys=keys[:-1], train=train
        )

    def head(self, params, features: torch.Tensor) -> torch.Tensor:
        """The output layer (assignment 002's ``decoder``): ``features (..., d_model)`` ->
        ``(..., vocab)``."""
        return nn.linear(params["decoder"], features)
