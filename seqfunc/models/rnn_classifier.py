"""A recurrent sequence classifier (assignment 001, questions 1 and 3.1).

    tokens (b, t) -> one-hot or embedding (b, t, d) -> RNN / LSTM / GRU stack (b, t, h)
                  -> hidden state at the last non-pad position (b, h) -> linear (b, classes)

Inputs: ``"one_hot"`` (the seed's ``MakeItHot``: one column per vocabulary entry except
``<pad>``, so Add2Digits' 11 tokens give an 11-wide input; a pad position is all zeros) or
``"embedding"`` (a learned ``(vocab, d_embed)`` table). The stack is
:mod:`seqfunc.nn.recurrent` (torch's fused kernels), ``kind`` ``"rnn"`` (tanh) | ``"lstm"`` |
``"gru"``; ``single_bias`` gives each layer one bias (the count in assignment 001 q3.1).

Sequences are right-padded: the classifier reads the top layer's output at position
``(number of non-pad tokens) - 1`` of each row. The recurrence runs left to right, so the pad
columns after it never reach that output: padding changes no prediction.

Registered as ``rnn-classifier`` (``-m kind=lstm`` etc.).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch
import torch.nn.functional as F

from seqfunc import nn, rng
from seqfunc.config import ConfigError, dropout_field, from_dict, non_negative, one_of, positive
from seqfunc.nn import recurrent

INPUTS = ("one_hot", "embedding")


@attrs.frozen
class RNNClassifierConfig:
    vocab_size: int = attrs.field(validator=positive)
    pad_id: int = attrs.field(validator=non_negative)
    num_classes: int = attrs.field(default=2, validator=positive)
    kind: str = attrs.field(default="rnn", validator=one_of(recurrent.KINDS))
    inputs: str = attrs.field(default="one_hot", validator=one_of(INPUTS))
    d_embed: int = attrs.field(default=100, validator=positive)  # inputs="embedding" only
    hidden_size: int = attrs.field(default=128, validator=positive)
    layers: int = attrs.field(default=2, validator=positive)
    single_bias: bool = False
    dropout: float = dropout_field(0.0)  # between layers, and before the output layer

    def __attrs_post_init__(self):
        if self.pad_id >= self.vocab_size:
            raise ConfigError(
                f"RNNClassifierConfig.pad_id={self.pad_id}: must be < vocab_size={self.vocab_size}"
            )
        if self.inputs == "one_hot" and self.vocab_size < 2:
            raise ConfigError(
                "RNNClassifierConfig.vocab_size=1: one-hot inputs need a token besides <pad>"
            )

    @property
    def input_size(self) -> int:
        """Width of the stack's input: vocab minus ``<pad>`` (one-hot) or ``d_embed``."""
        return self.vocab_size - 1 if self.inputs == "one_hot" else self.d_embed


def one_hot_without_pad(tokens: torch.Tensor, vocab_size: int, pad_id: int) -> torch.Tensor:
    """``tokens (b, t)`` -> ``(b, t, vocab_size - 1)`` float: the one-hot code with the
    ``<pad>`` column removed (a pad position becomes all zeros)."""
    hot = F.one_hot(tokens, vocab_size).float()
    return torch.cat([hot[..., :pad_id], hot[..., pad_id + 1 :]], dim=-1)


def last_real(x: torch.Tensor, tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """``x (b, t, h)`` at each row's last non-pad position of right-padded ``tokens (b, t)``
    -> ``(b, h)`` (position 0 for a row of pads only)."""
    last = ((tokens != pad_id).sum(dim=1) - 1).clamp(min=0)
    return x[torch.arange(x.shape[0], device=x.device), last]


class RNNClassifier:
    """``apply(params, tokens (b, t)) -> logits (b, num_classes)``; stateless."""

    name: ClassVar[str] = "rnn-classifier"
    task_kinds: ClassVar[tuple[str, ...]] = ("classification",)
    #: torch's recurrent kernels have no vmap batching rule: no sweeps or vmapped ensembles.
    vmappable: ClassVar[bool] = False
    Config: ClassVar[type] = RNNClassifierConfig
    check_options: ClassVar[dict] = {"hidden_size": 8, "layers": 2, "d_embed": 8, "dropout": 0.1}
    exempt: ClassVar[dict] = {
        "vmap_equals_loop": "torch's fused recurrent kernels (aten::rnn_tanh, aten::lstm, "
        "aten::gru) have no vmap batching rule",
    }

    def __init__(self, config: RNNClassifierConfig):
        self.config = config

    @classmethod
    def config_for(cls, dataset, **overrides) -> RNNClassifierConfig:
        fields = {
            "vocab_size": len(dataset.vocab),
            "pad_id": dataset.pad_id,
            "num_classes": len(dataset.classes),
        }
        return from_dict(RNNClassifierConfig, {**fields, **overrides}, where="model options")

    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        k_emb, k_rnn, k_out = rng.split(key, 3)
        params = {
            "rnn": recurrent.init_recurrent(
                k_rnn, c.kind, c.input_size, c.hidden_size, c.layers, single_bias=c.single_bias
            ),
            "out": nn.init_linear(k_out, c.hidden_size, c.num_classes),
        }
        if c.inputs == "embedding":
            params["embed"] = nn.init_embedding(k_emb, c.vocab_size, c.d_embed)
        return params

    def features(self, params, tokens, *, key=None, train=False) -> torch.Tensor:
        """The top layer's hidden state at the last non-pad position, ``(b, hidden_size)``."""
        c = self.config
        k_rnn, k_out = rng.split(key) if key is not None else (None, None)
        if c.inputs == "one_hot":
            x = one_hot_without_pad(tokens, c.vocab_size, c.pad_id)
        else:
            x = nn.embedding(params["embed"], tokens)
        x, _ = recurrent.recurrent(
            c.kind, params["rnn"], x, dropout_rate=c.dropout, key=k_rnn, train=train
        )
        return nn.dropout(last_real(x, tokens, c.pad_id), c.dropout, key=k_out, train=train)

    def apply(self, params, tokens, *, key=None, train=False) -> torch.Tensor:
        return nn.linear(params["out"], self.features(params, tokens, key=key, train=train))
