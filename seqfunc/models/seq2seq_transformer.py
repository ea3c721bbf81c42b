"""The encoder-decoder Transformer of assignment 000 (5.3), as pure functions over a param tree.

embedding -> (+ sinusoidal positions) -> dropout -> N encoder layers | N decoder layers
-> linear prediction. Masks as the seed applies them: source key padding in the encoder and
as memory padding in cross-attention; target key padding and the causal mask in the decoder.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from seqfunc import nn, rng
from seqfunc.config import ConfigError, check_divisible, dropout_field, non_negative, positive
from seqfunc.models.encoder_decoder import EncoderDecoder, seq2seq_sizes


@attrs.frozen
class Seq2SeqTransformerConfig:
    vocab_size: int = attrs.field(validator=positive)
    pad_id: int = attrs.field(validator=non_negative)
    #: A separate target vocabulary (translation); None shares the source's table.
    tgt_vocab_size: int | None = attrs.field(default=None, validator=positive)
    d_model: int = attrs.field(default=64, validator=positive)
    heads: int = attrs.field(default=4, validator=positive)
    encoder_layers: int = attrs.field(default=2, validator=non_negative)
    decoder_layers: int = attrs.field(default=2, validator=positive)
    d_ff: int = attrs.field(default=64, validator=positive)
    dropout: float = dropout_field(0.01)
    positional: bool = True
    norm_first: bool = False
    activation: str = "relu"
    #: attention kernel: "dot" (default), "additive", "simple", "linear", "window", "chunked",
    #: "full", or {"kind": name, **options} such as {"kind": "window", "window": 8}
    attention: str | dict = attrs.field(default="dot", validator=nn.validate_attention)
    #: recompute each layer's activations in the backward instead of keeping them
    remat: bool = False

    def __attrs_post_init__(self):
        check_divisible(self, "d_model", "heads")
        if self.pad_id >= max(self.vocab_size, self.tgt_vocab_size or 0):
            raise ConfigError(
                f"Seq2SeqTransformerConfig.pad_id={self.pad_id}: must be < vocab_size"
            )
        if self.activation not in nn.feedforward.ACTIVATIONS:
            raise ConfigError(
                f"Seq2SeqTransformerConfig.activation={self.activation!r}: must be one of "
                f"{sorted(nn.feedforward.ACTIVATIONS)}"
            )


class Seq2SeqTransformer(EncoderDecoder):
    """``apply(params, src (b, s), tgt_in (b, t)) -> logits (b, t, tgt_vocab)``.

    Stateless: the instance holds only its config; every parameter lives in the tree that
    :meth:`init` returns and every call receives.
    """

    name: ClassVar[str] = "transformer"
    task_kinds: ClassVar[tuple[str, ...]] = ("seq2seq",)
    Config: ClassVar[type] = Seq2SeqTransformerConfig
    #: Without positions the output is invariant to permuting the source (``seqfunc check``).
    position_free: ClassVar[dict] = {"positional": False}

    def __init__(self, config: Seq2SeqTransformerConfig):
        self.config = config
        # Built once here, not per call: constructing a frozen attrs object inside a
        # torch.compile'd function is a graph break.
        self.block_options = nn.BlockOptions(
            heads=config.heads,
            dropout=config.dropout,
            norm_first=config.norm_first,
            activation=config.activation,
            attention=config.attention,
            remat=config.remat,
        )

    @classmethod
    def config_for(cls, dataset, **overrides) -> Seq2SeqTransformerConfig:
        """A config sized for a seq2seq dataset (vocabularies and padding id from it)."""
        return Seq2SeqTransformerConfig(**{**seq2seq_sizes(dataset), **overrides})

    # -- parameters ------------------------------------------------------------------------
    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        k_emb, k_tgt_emb, k_enc, k_dec, k_out = rng.split(key, 5)
        params = {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.d_model),
            "encoder": nn.init_encoder(
                k_enc, c.encoder_layers, c.d_model, c.d_ff, attention=c.attention, heads=c.heads
            ),
            "decoder": nn.init_decoder(
                k_dec, c.decoder_layers, c.d_model, c.d_ff, attention=c.attention, heads=c.heads
            ),
            "predict": nn.init_linear(k_out, c.d_model, c.tgt_vocab_size or c.vocab_size),
        }
        if c.tgt_vocab_size is not None:
            params["tgt_embed"] = nn.init_embedding(k_tgt_emb, c.tgt_vocab_size, c.d_model)
        return params

    # -- forward ---------------------------------------------------------------------------
    def _embed(self, table, tokens, key, train, offset=0):
        x = nn.embedding(table, tokens)
        if self.config.positional:
            x = nn.add_sinusoidal(x, offset=offset)
        return nn.dropout(x, self.config.dropout, key=key, train=train)

    def encode(
        self,
        params: dict,
        src: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> dict:
        """``src (b, s)`` -> context ``{"memory": (b, s, d), "mask": (b, 1, 1, s)}``."""
        k_emb, k_enc = (None, None) if key is None else rng.split(key)
        mask = nn.padding_mask(src, self.config.pad_id)
        x = self._embed(params["embed"], src, k_emb, train)
        memory = nn.encoder(
            params["encoder"],
            x,
            opts=self.block_options,
            mask=mask,
            key=k_enc,
            train=train,
        )
        return {"memory": memory, "mask": mask}

    def decode(
        self,
        params: dict,
        context: dict,
        tgt_in: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> torch.Tensor:
        """``tgt_in (b, t)`` (``<bos>`` + prefix) and an :meth:`encode` context -> logits
        ``(b, t, tgt_vocab)``."""
        k_emb, k_dec = (None, None) if key is None else rng.split(key)
        t = tgt_in.shape[1]
        self_mask = nn.combine_masks(
            nn.causal_mask(t, device=tgt_in.device), nn.padding_mask(tgt_in, self.config.pad_id)
        )
        table = params.get("tgt_embed", params["embed"])
        y = self._embed(table, tgt_in, k_emb, train)
        y = nn.decoder(
            params["decoder"],
            y,
            context["memory"],
            opts=self.block_options,
            self_mask=self_mask,
            memory_mask=context["mask"],
            key=k_dec,
            train=train,
        )
        return nn.linear(params["predict"], y)
