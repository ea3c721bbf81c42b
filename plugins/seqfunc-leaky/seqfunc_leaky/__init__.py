"""Two subtly wrong variants of seqfunc's seq2seq Transformer: test fixtures for ``seqfunc check``.

* :class:`FutureLeakTransformer`: the decoder's self-attention mask lets position ``i`` also see
  position ``i + 1`` (fails ``causal``);
* :class:`PaddingLeakTransformer`: the encoder and the cross-attention ignore the source padding
  mask (fails ``padding_invariance``).

Both train fine and look plausible on a loss curve; only the invariants expose them.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from seqfunc import nn, rng
from seqfunc.models import Seq2SeqTransformer

__all__ = ["FutureLeakTransformer", "PaddingLeakTransformer"]


class FutureLeakTransformer(Seq2SeqTransformer):
    name: ClassVar[str] = "leaky-causal"

    def decode(self, params, context, tgt_in, *, key=None, train=False):
        k_emb, k_dec = (None, None) if key is None else rng.split(key)
        t = tgt_in.shape[1]
        causal = nn.causal_mask(t, device=tgt_in.device)
        one_ahead = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).triu(1).tril(1)
        self_mask = nn.combine_masks(
            causal | one_ahead,  # the bug: i also sees i + 1
            nn.padding_mask(tgt_in, self.config.pad_id),
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


class PaddingLeakTransformer(Seq2SeqTransformer):
    name: ClassVar[str] = "leaky-padding"

    def encode(self, params, src, *, key=None, train=False):
        k_emb, k_enc = (None, None) if key is None else rng.split(key)
        x = self._embed(params["embed"], src, k_emb, train)
        # the bug: no padding mask, so <pad> keys are attended like real tokens
        memory = nn.encoder(
            params["encoder"], x, opts=self.block_options, mask=None, key=k_enc, train=train
        )
        everything = torch.ones_like(nn.padding_mask(src, self.config.pad_id))
        return {"memory": memory, "mask": everything}
