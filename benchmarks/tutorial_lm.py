"""Assignment 002's language model as the PyTorch tutorial writes it, on ``torch.nn`` modules: the
reference that seqfunc's ``transformer_lm`` is compared with (``tests/test_lm_parity.py``,
``benchmarks/wikitext_reference.py``). Time-major, as the tutorial: ``src (t, b)``."""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0).transpose(0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[: x.size(0), :])


class TransformerModel(nn.Module):
    """The tutorial's ``TransformerModel(ntoken, ninp, nhead, nhid, nlayers, dropout, norm_first)``."""

    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5, norm_first=False):
        super().__init__()
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        layer = nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout, norm_first=norm_first)
        self.transformer_encoder = nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)
        self.init_weights()

    @staticmethod
    def generate_square_subsequent_mask(sz: int) -> torch.Tensor:
        mask = (torch.triu(torch.ones(sz, sz)) == 1).transpose(0, 1)
        return mask.float().masked_fill(mask == 0, float("-inf")).masked_fill(mask == 1, 0.0)

    def init_weights(self) -> None:
        initrange = 0.1
        self.encoder.weight.data.uniform_(-initrange, initrange)
        self.decoder.bias.data.zero_()
        self.decoder.weight.data.uniform_(-initrange, initrange)

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None) -> torch.Tensor:
        src = self.encoder(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        return self.decoder(self.transformer_encoder(src, src_mask))


def seqfunc_params(module: TransformerModel) -> dict:
    """The module's weights as seqfunc ``transformer_lm`` params (copies)."""

    def linear(m):
        return {"weight": m.weight.detach().clone(), "bias": m.bias.detach().clone()}

    layers = []
    for layer in module.transformer_encoder.layers:
        attn = layer.self_attn
        layers.append(
            {
                "attn": {
                    "qkv": {
                        "weight": attn.in_proj_weight.detach().clone(),
                        "bias": attn.in_proj_bias.detach().clone(),
                    },
                    "out": linear(attn.out_proj),
                },
                "attn_norm": linear(layer.norm1),
                "ff": {"up": linear(layer.linear1), "down": linear(layer.linear2)},
                "ff_norm": linear(layer.norm2),
            }
        )
    return {
        "encoder": {"weight": module.encoder.weight.detach().clone()},
        "layers": layers,
        "decoder": linear(module.decoder),
    }
