"""What every sequence-classification dataset shares: token-id splits, vocabulary, batches.

A subclass fills ``self.splits_data = {split: (sequences, labels)}`` (sequences as lists of
token ids), ``self.vocab``, ``self.classes`` and ``self.config`` (with ``max_len``,
``pad_multiple``, ``token_budget`` and ``seed`` fields); this base class sorts each split by
length and provides the dataset contract's ``num_examples`` / ``batches`` plus ``num_batches``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import torch

from seqfunc.config import ConfigError
from seqfunc.data.bucketing import BucketedSplits, collate_classification
from seqfunc.data.vocab import Vocab

PAD, START, END, UNK = ".pad", ".start", ".end", ".unk"
SPECIALS = (PAD, START, END, UNK)

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_NON_LETTER = re.compile(r"[^\w\s]|[\d_]")


def tokenize(text: str) -> list[str]:
    """The seed's crude tokeniser: lowercase, remove every non-letter, split on whitespace.

    HTML line breaks (``<br />``, which IMDb reviews contain) become spaces first, so the
    words on either side stay apart. Letters include non-ASCII ones (``café``).
    """
    return _NON_LETTER.sub("", _BREAK.sub(" ", text).lower()).split()


def frequency_vocab(token_lists: Iterable[Sequence[str]], max_size: int | None = None) -> Vocab:
    """``.pad .start .end .unk`` then words by descending count (ties alphabetical), at most
    ``max_size`` entries in all (the rest map to ``.unk``)."""
    counts = Counter(t for tokens in token_lists for t in tokens)
    for special in SPECIALS:
        counts.pop(special, None)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if max_size is not None:
        if max_size <= len(SPECIALS):
            raise ConfigError(
                f"vocab_size={max_size}: must be > {len(SPECIALS)} (the special tokens)"
            )
        words = words[: max_size - len(SPECIALS)]
    return Vocab([*SPECIALS, *words], unk=UNK)


def sort_by_length(sequences: list, labels: list) -> tuple[list, list]:
    """Both lists reordered by sequence length (stable: ties keep their order)."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    return [sequences[i] for i in order], [labels[i] for i in order]


class ClassificationData(BucketedSplits):
    """Base of the classification datasets. Batches: ``{"tokens": (b, t), "label": (b,)}``."""

    task = "classification"

    vocab: Vocab
    classes: tuple[str, ...]
    splits_data: dict[str, tuple[list[list[int]], list[int]]]

    @property
    def pad_id(self) -> int:
        return self.vocab[PAD]

    def _finish(self) -> None:
        """Sort every split by length (call at the end of ``__init__``)."""
        self.splits_data = {
            name: sort_by_length(list(seqs), list(labels))
            for name, (seqs, labels) in self.splits_data.items()
        }

    def _split(self, split: str) -> tuple[list[list[int]], list[int]]:
        if split not in self.splits_data:
            raise ValueError(
                f"unknown split {split!r}; this dataset has {', '.join(self.splits_data)}"
            )
        return self.splits_data[split]

    def num_examples(self, split: str) -> int:
        return len(self._split(split)[0])

    def _lengths(self, split: str) -> list[int]:
        return [len(s) for s in self._split(split)[0]]

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Length-bucketed batches (see :mod:`seqfunc.data.bucketing`).

        Training batches are shuffled per epoch and follow the token budget; evaluation
        batches are in length order with ``batch_size`` rows. Nothing is dropped
        (``drop_last`` is accepted for the contract and ignored: bucketing already keeps the
        number of shapes small).
        """
        c = self.config
        sequences, labels = self._split(split)
        for index in self.batch_indices(split, batch_size, epoch=epoch):
            yield collate_classification(
                [sequences[i] for i in index],
                [labels[i] for i in index],
                pad_id=self.pad_id,
                max_len=c.max_len,
                pad_multiple=c.pad_multiple,
            )

    # -- text in and out ------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        tokens = tokenize(text)
        if not tokens:
            raise ValueError("the text has no words (after lowercasing and removing non-letters)")
        return self.vocab[tokens]

    def decode(self, ids) -> str:
        return " ".join(t for t in self.vocab.to_tokens(list(ids)) if t != PAD)
