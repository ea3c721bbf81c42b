"""Whole models. Each registers through the ``seqfunc.models`` entry point group."""

from seqfunc.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig

__all__ = ["Seq2SeqTransformer", "Seq2SeqTransformerConfig"]
