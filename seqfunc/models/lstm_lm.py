"""An LSTM language model: embedding -> dropout -> LSTM stack -> dropout -> linear (optionally
tied to the embedding). The recurrent state is its cache: generation feeds one token per step."""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from seqfunc import nn, rng
from seqfunc.config import ConfigError, dropout_field, from_dict, positive
from seqfunc.nn import recurrent


@attrs.frozen
class LSTMLMConfig:
    vocab_size: int = attrs.field(validator=positive)
    d_embed: int = attrs.field(default=128, validator=positive)
    hidden: int = attrs.field(default=256, validator=positive)
    layers: int = attrs.field(default=2, validator=positive)
    dropout: float = dropout_field(0.0)
    tie_weights: bool = False

    def __attrs_post_init__(self):
        if self.tie_weights and self.d_embed != self.hidden:
            raise ConfigError(
                f"LSTMLMConfig.tie_weights=True needs d_embed == hidden (got {self.d_embed}, {self.hidden})"
            )


class LSTMLM:
    name: ClassVar[str] = "lstm_lm"
    task_kinds: ClassVar[tuple[str, ...]] = ("language_model",)
    #: torch's recurrent kernels have no vmap batching rule: no sweeps or vmapped ensembles.
    vmappable: ClassVar[bool] = False
    Config: ClassVar[type] = LSTMLMConfig
    #: ``seqfunc check``: torch's fused LSTM kernel (``aten::lstm``) has no vmap batching rule,
    #: so stacked-parameter ensembles of this model are not supported (yet).
    exempt: ClassVar[dict] = {
        "vmap_equals_loop": "torch's fused aten::lstm has no vmap batching rule"
    }

    def __init__(self, config: LSTMLMConfig):
        self.config = config

    @classmethod
    def config_for(cls, dataset, **overrides) -> LSTMLMConfig:
        return from_dict(
            LSTMLMConfig, {"vocab_size": len(dataset.vocab), **overrides}, where="model options"
        )

    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        k_emb, k_rnn, k_head = rng.split(key, 3)
        params = {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.d_embed, std=0.1),
            "lstm": recurrent.init_lstm(k_rnn, c.d_embed, c.hidden, c.layers),
        }
        if not c.tie_weights:
            params["head"] = nn.init_linear(k_head, c.hidden, c.vocab_size)
        return params

    def _run(self, params, tokens, state, key, train):
        """``(features (b, t, hidden), state')``."""
        c = self.config
        k_in, k_rnn, k_out = rng.split(key, 3) if key is not None else (None, None, None)
        rate = c.dropout if train else 0.0
        x = nn.dropout(nn.embedding(params["embed"], tokens), rate, key=k_in, train=train)
        x, state = recurrent.lstm(
            params["lstm"], x, state, dropout_rate=rate, key=k_rnn, train=train
        )
        return nn.dropout(x, rate, key=k_out, train=train), state

    def apply(self, params, tokens: torch.Tensor, *, key=None, train: bool = False) -> torch.Tensor:
        """``tokens (b, t)`` -> logits ``(b, t, vocab)`` from a zero state."""
        return self.head(params, self.features(params, tokens, key=key, train=train))

    def features(
        self, params, tokens: torch.Tensor, *, key=None, train: bool = False
    ) -> torch.Tensor:
        """``tokens (b, t)`` -> the last LSTM layer's outputs ``(b, t, hidden)``, before :meth:`head`."""
        return self._run(params, tokens, None, key, train)[0]

    def head(self, params, features: torch.Tensor) -> torch.Tensor:
        """The output layer: ``features (..., hidden)`` -> logits ``(..., vocab)`` (through the
        token embedding when the weights are tied)."""
        return nn.linear(params.get("head") or {"weight": params["embed"]["weight"]}, features)

    def init_cache(self, params, batch: int, max_len: int) -> dict:
        """The recurrent state is the whole cache (no length limit): None = zeros."""
        return {"state": None}

    def extend(self, params, tokens: torch.Tensor, cache: dict):
        features, state = self._run(params, tokens, cache["state"], None, False)
        return self.head(params, features), {"state": state}
