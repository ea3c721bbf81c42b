"""What every encoder-decoder (seq2seq) model shares: sizing from a dataset, and ``apply`` as
``decode(encode(src))``."""

from __future__ import annotations

import torch

from seqfunc import rng


class EncoderDecoder:
    """Mixin for seq2seq models that define ``encode(params, src, key=, train=) -> context`` and
    ``decode(params, context, tgt_in, key=, train=) -> logits``: the decoders in
    :mod:`seqfunc.inference.decode` use those two, training uses :meth:`apply`."""

    def apply(
        self,
        params: dict,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> torch.Tensor:
        """``src (b, s)``, ``tgt_in (b, t)`` -> logits ``(b, t, tgt_vocab)``."""
        k_enc, k_dec = (None, None) if key is None else rng.split(key)
        context = self.encode(params, src, key=k_enc, train=train)
        return self.decode(params, context, tgt_in, key=k_dec, train=train)


def seq2seq_sizes(dataset) -> dict:
    """``vocab_size``, ``pad_id`` and, when the target has its own vocabulary,
    ``tgt_vocab_size``: the config fields any seq2seq model reads from its dataset."""
    src, tgt = dataset.source_vocab, dataset.target_vocab
    fields = dict(vocab_size=len(src), pad_id=dataset.pad_id)
    if tgt is not src:
        fields["tgt_vocab_size"] = len(tgt)
    return fields
