"""A fully-connected sequence classifier over a fixed number of positions (assignment 001 q3.1).

    tokens (b, t) -> right-pad to max_len -> embedding (b, max_len, d) -> flatten (b, max_len d)
                  -> [linear -> ReLU -> dropout] per hidden layer -> linear (b, classes)

Every position has its own weights in the first layer, so the parameter count grows with
``max_len`` (``max_len * d_embed * hidden[0]``), unlike a recurrent network's. Inputs shorter
than ``max_len`` are padded with ``<pad>`` (so a batch's own padding never matters: the model
always sees ``max_len`` positions); longer ones are an error.

Registered as ``mlp-classifier``.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import einops
import torch
import torch.nn.functional as F

from seqfunc import nn, rng
from seqfunc.config import ConfigError, dropout_field, from_dict, non_negative, positive


def _hidden_sizes(instance, attribute, value):
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"MLPClassifierConfig.hidden={list(value)!r}: must be a list of ints > 0")


@attrs.frozen
class MLPClassifierConfig:
    vocab_size: int = attrs.field(validator=positive)
    pad_id: int = attrs.field(validator=non_negative)
    max_len: int = attrs.field(
        validator=positive
    )  # positions the model reads (inputs are padded to it)
    num_classes: int = attrs.field(default=2, validator=positive)
    d_embed: int = attrs.field(default=100, validator=positive)
    hidden: tuple[int, ...] = attrs.field(
        default=(256, 256), converter=tuple, validator=_hidden_sizes
    )
    dropout: float = dropout_field(0.0)
    embed_std: float = attrs.field(default=1.0, validator=positive)

    def __attrs_post_init__(self):
        if self.pad_id >= self.vocab_size:
            raise ConfigError(
                f"MLPClassifierConfig.pad_id={self.pad_id}: must be < vocab_size={self.vocab_size}"
            )


class MLPClassifier:
    """``apply(params, tokens (b, t <= max_len)) -> logits (b, num_classes)``; stateless."""

    name: ClassVar[str] = "mlp-classifier"
    task_kinds: ClassVar[tuple[str, ...]] = ("classification",)
    Config: ClassVar[type] = MLPClassifierConfig
    check_options: ClassVar[dict] = {"d_embed": 4, "hidden": [8], "dropout": 0.1}
    # No exemptions: every position-aware invariant holds (padding to max_len makes explicit
    # and implicit pads identical); permutation invariance is skipped on its own because the
    # model declares no position_free config (each position has its own weights).

    def __init__(self, config: MLPClassifierConfig):
        self.config = config

    @classmethod
    def config_for(cls, dataset, **overrides) -> MLPClassifierConfig:
        fields = {
            "vocab_size": len(dataset.vocab),
            "pad_id": dataset.pad_id,
            "num_classes": len(dataset.classes),
        }
        max_len = getattr(dataset.config, "max_len", None)
        if max_len is not None:
            fields["max_len"] = max_len
        return from_dict(MLPClassifierConfig, {**fields, **overrides}, where="model options")

    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        k_emb, k_out, *k_hidden = rng.split(key, 2 + len(c.hidden))
        sizes = [c.max_len * c.d_embed, *c.hidden]
        return {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.d_embed, std=c.embed_std),
            "hidden": [
                nn.init_linear(k, d_in, d_out) for k, d_in, d_out in zip(k_hidden, sizes, sizes[1:])
            ],
            "out": nn.init_linear(k_out, sizes[-1], c.num_classes),
        }

    def apply(self, params, tokens, *, key=None, train=False) -> torch.Tensor:
        c = self.config
        if tokens.shape[1] > c.max_len:
            raise ValueError(
                f"tokens have {tokens.shape[1]} positions; this model reads max_len={c.max_len}"
            )
        tokens = F.pad(tokens, (0, c.max_len - tokens.shape[1]), value=c.pad_id)
        x = einops.rearrange(nn.embedding(params["embed"], tokens), "b t d -> b (t d)")
        keys = (
            rng.split(key, len(params["hidden"]))
            if key is not None
            else [None] * len(params["hidden"])
        )
        for layer, k in zip(params["hidden"], keys):
            x = nn.dropout(F.relu(nn.linear(layer, x)), c.dropout, key=k, train=train)
        return nn.linear(params["out"], x)
