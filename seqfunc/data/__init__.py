"""Vocabularies, batching and datasets."""

from seqfunc.data.padding import pad_batch, pad_or_trim, used_width
from seqfunc.data.vocab import Vocab

__all__ = ["Vocab", "pad_or_trim", "pad_batch", "used_width"]
