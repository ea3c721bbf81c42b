"""A GRU encoder-decoder (Sutskever et al. 2014; Cho et al. 2014) as a seqfunc model plugin.

embedding -> L-layer GRU encoder; its final state starts the decoder, and its top layer's final
state (the *context*) is concatenated to every decoder input -> L-layer GRU decoder -> linear.
Padding: the encoder keeps its state at ``<pad>`` positions, so trailing padding changes nothing.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from seqfunc import nn, rng
from seqfunc.config import ConfigError, non_negative, positive, probability

__all__ = ["GRUSeq2SeqConfig", "GRUSeq2Seq", "init_gru_layer", "gru_layer"]
__version__ = "0.1.0"


# -- one GRU layer as an init/apply pair ------------------------------------------------------------
def init_gru_layer(key: rng.KeyArray, d_in: int, hidden: int) -> dict:
    """Input and recurrent projections to the three gates ``(r, z, n)``."""
    k_x, k_h = rng.split(key)
    return {
        "input": nn.init_linear(k_x, d_in, 3 * hidden),
        "recurrent": nn.init_linear(k_h, hidden, 3 * hidden),
    }


def gru_layer(params: dict, x: torch.Tensor, h: torch.Tensor, keep: torch.Tensor | None = None):
    """``x (b, t, d_in)``, initial state ``h (b, hidden)`` -> outputs ``(b, t, hidden)`` and the
    final state ``(b, hidden)``. Where ``keep (b, t)`` is False (padding) the state is carried
    over unchanged, as torch's GRU does with packed sequences."""
    gates_x = nn.linear(params["input"], x)  # all time steps at once: (b, t, 3h)
    outputs = []
    for i in range(x.shape[1]):
        xr, xz, xn = gates_x[:, i].chunk(3, dim=-1)
        hr, hz, hn = nn.linear(params["recurrent"], h).chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        new_h = (1 - z) * torch.tanh(xn + r * hn) + z * h
        h = new_h if keep is None else torch.where(keep[:, i, None], new_h, h)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


@attrs.frozen
class GRUSeq2SeqConfig:
    vocab_size: int = attrs.field(validator=positive)
    pad_id: int = attrs.field(validator=non_negative)
    tgt_vocab_size: int | None = attrs.field(default=None, validator=positive)
    embed_size: int = attrs.field(default=32, validator=positive)
    hidden_size: int = attrs.field(default=64, validator=positive)
    layers: int = attrs.field(default=2, validator=positive)
    dropout: float = attrs.field(default=0.1, validator=probability)

    def __attrs_post_init__(self):
        if self.pad_id >= max(self.vocab_size, self.tgt_vocab_size or 0):
            raise ConfigError(f"GRUSeq2SeqConfig.pad_id={self.pad_id}: must be < vocab_size")


class GRUSeq2Seq:
    """``apply(params, src (b, s), tgt_in (b, t)) -> logits (b, t, tgt_vocab)``."""

    name: ClassVar[str] = "gru"
    task_kinds: ClassVar[tuple[str, ...]] = ("seq2seq",)
    Config: ClassVar[type] = GRUSeq2SeqConfig
    #: A tiny config for `seqfunc check gru`.
    check_options: ClassVar[dict] = {"embed_size": 8, "hidden_size": 16, "layers": 1}

    def __init__(self, config: GRUSeq2SeqConfig):
        self.config = config

    @classmethod
    def config_for(cls, dataset, **overrides) -> GRUSeq2SeqConfig:
        src, tgt = dataset.source_vocab, dataset.target_vocab
        fields = dict(vocab_size=len(src), pad_id=dataset.pad_id)
        if tgt is not src:
            fields["tgt_vocab_size"] = len(tgt)
        return GRUSeq2SeqConfig(**{**fields, **overrides})

    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        k_emb, k_tgt, k_enc, k_dec, k_out = rng.split(key, 5)
        enc_keys, dec_keys = rng.split(k_enc, c.layers), rng.split(k_dec, c.layers)
        params = {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.embed_size),
            "encoder": [
                init_gru_layer(
                    enc_keys[i], c.embed_size if i == 0 else c.hidden_size, c.hidden_size
                )
                for i in range(c.layers)
            ],
            "decoder": [
                init_gru_layer(
                    dec_keys[i],
                    c.embed_size + c.hidden_size if i == 0 else c.hidden_size,
                    c.hidden_size,
                )
                for i in range(c.layers)
            ],
            "predict": nn.init_linear(k_out, c.hidden_size, c.tgt_vocab_size or c.vocab_size),
        }
        if c.tgt_vocab_size is not None:
            params["tgt_embed"] = nn.init_embedding(k_tgt, c.tgt_vocab_size, c.embed_size)
        return params

    def _stack(self, layers, x, states, keep, key, train):
        """Run the layers; dropout between them. ``states (b, L, h)`` -> outputs, new states."""
        keys = [None] * len(layers) if key is None else list(rng.split(key, len(layers)))
        finals = []
        for i, layer in enumerate(layers):
            if i > 0:
                x = nn.dropout(x, self.config.dropout, key=keys[i], train=train)
            x, h = gru_layer(layer, x, states[:, i], keep)
            finals.append(h)
        return x, torch.stack(finals, dim=1)

    def encode(self, params: dict, src: torch.Tensor, *, key=None, train: bool = False) -> dict:
        """``src (b, s)`` -> ``{"state": (b, L, h)}`` (batch first, for beam search)."""
        c = self.config
        k_emb, k_enc = (None, None) if key is None else rng.split(key)
        x = nn.dropout(nn.embedding(params["embed"], src), c.dropout, key=k_emb, train=train)
        zeros = x.new_zeros(src.shape[0], c.layers, c.hidden_size)
        _, state = self._stack(params["encoder"], x, zeros, src != c.pad_id, k_enc, train)
        return {"state": state}

    def decode(
        self, params: dict, context: dict, tgt_in: torch.Tensor, *, key=None, train: bool = False
    ) -> torch.Tensor:
        """``tgt_in (b, t)`` -> logits ``(b, t, tgt_vocab)``; position i sees ``tgt_in[:, :i+1]``."""
        c = self.config
        k_emb, k_dec, k_out = (None, None, None) if key is None else rng.split(key, 3)
        table = params.get("tgt_embed", params["embed"])
        y = nn.dropout(nn.embedding(table, tgt_in), c.dropout, key=k_emb, train=train)
        summary = context["state"][:, -1]  # the encoder's top layer, last real token
        y = torch.cat([y, summary[:, None].expand(-1, tgt_in.shape[1], -1)], dim=-1)
        y, _ = self._stack(params["decoder"], y, context["state"], None, k_dec, train)
        y = nn.dropout(y, c.dropout, key=k_out, train=train)
        return nn.linear(params["predict"], y)

    def apply(
        self,
        params: dict,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        *,
        key=None,
        train: bool = False,
    ) -> torch.Tensor:
        k_enc, k_dec = (None, None) if key is None else rng.split(key)
        context = self.encode(params, src, key=k_enc, train=train)
        return self.decode(params, context, tgt_in, key=k_dec, train=train)
