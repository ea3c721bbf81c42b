"""GPT-2's layout: the :class:`~seqfunc.models.gpt.GPT` decoder with learned positions,
pre-norm blocks, the tanh-approximated GELU, a head tied to the token embedding by default
and no bias on the head (``lm_head`` of the Hugging Face model). Weights of a Hugging Face
GPT-2 folder load into it (``seqfunc import``, :mod:`seqfunc.pretrained`)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from seqfunc import rng
from seqfunc.config import from_dict, positive
from seqfunc.models.gpt import GPT, GPTConfig


@attrs.frozen
class GPT2Config(GPTConfig):
    activation: str = "gelu_tanh"
    tie_weights: bool = True
    #: the layer norms' epsilon (``layer_norm_epsilon``)
    norm_eps: float = attrs.field(default=1e-5, validator=positive)


class GPT2(GPT):
    """``apply(params, tokens (b, t)) -> logits (b, t, vocab)``, ``t <= context``."""

    name: ClassVar[str] = "gpt2"
    Config: ClassVar[type] = GPT2Config

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.norm_eps = config.norm_eps

    @classmethod
    def config_for(cls, dataset, **overrides) -> GPT2Config:
        fields = dict(vocab_size=len(dataset.vocab))
        context = getattr(dataset.config, "context", None)
        if context:
            fields["context"] = context
        return from_dict(GPT2Config, {**fields, **overrides}, where="model options")

    def init(self, key: rng.KeyArray) -> dict:
        params = super().init(key)
        if "head" in params:  # GPT-2's untied head has no bias
            del params["head"]["bias"]
        return params
