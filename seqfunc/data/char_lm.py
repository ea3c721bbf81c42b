"""The shared shape of character/byte-level language-model datasets.

A subclass loads its text into id tensors per split (:meth:`CharLMDataset.load`); this base
class turns them into random-slice batches (:mod:`seqfunc.data.random_slices`):

* ``train``: an epoch is ``len(train) // context`` windows (about one pass over the tokens),
  each batch cut with the key ``fold_in(fold_in(key(seed), epoch), i)``;
* ``val`` / ``test``: ``eval_slices`` fixed windows (the same every call), so the validation
  figure is comparable across steps and runs (assignment 004 q12 averages over random slices).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import torch

from seqfunc import rng
from seqfunc.config import ConfigError
from seqfunc.data.random_slices import random_offsets, random_slices, slice_windows
from seqfunc.data.vocab import Vocab


class CharLMDataset:
    task: ClassVar[str] = "language_model"
    #: "char" or "byte": what one token is (bits per character / byte in the metrics).
    unit: ClassVar[str] = "char"
    splits: ClassVar[tuple[str, ...]] = ("train", "val")

    def __init__(self, config=None):
        self.config = config or self.Config()
        self.vocab, self.data = self.load()
        for split, ids in self.data.items():
            if ids.numel() <= self.config.context + 1:
                raise ConfigError(
                    f"{self.name}: the {split} split has {ids.numel()} tokens, too few for "
                    f"context={self.config.context}"
                )

    def load(self) -> tuple[Vocab, dict[str, torch.Tensor]]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the dataset contract ------------------------------------------------------------
    def num_examples(self, split: str) -> int:
        self._check_split(split)
        if split == "train":
            return self.data["train"].numel() // self.config.context
        return self.eval_slices

    @property
    def eval_slices(self) -> int:
        """Fixed windows per held-out split (``config.eval_slices``)."""
        return self.config.eval_slices

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        self._check_split(split)
        if batch_size <= 0:
            raise ConfigError(f"batch_size={batch_size}: must be > 0")
        data, context = self.data[split], self.config.context
        if split == "train":
            key = rng.fold_in(rng.key(self.config.seed), epoch)
            for i in range(self.num_examples("train") // batch_size):
                yield random_slices(data, rng.fold_in(key, i), batch_size, context)
            return
        key = rng.fold_in(rng.key(self.config.seed), 1_000_003 + self.splits.index(split))
        # the windows' offsets are fixed up front, their tokens read a batch at a time (a
        # split on disk is read only as far as evaluation goes)
        starts = random_offsets(key, data.numel(), self.eval_slices, context)
        stop = self.eval_slices
        if drop_last:
            stop -= stop % batch_size
        for start in range(0, stop, batch_size):
            with torch.no_grad():
                window = slice_windows(data, starts[start : start + batch_size], context + 1)
            yield {"inputs": window[:, :-1], "targets": window[:, 1:]}

    # -- text in and out ------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Characters to ids; characters outside the vocabulary raise ``ValueError``."""
        unknown = self.vocab.unknown(list(text))
        if unknown:
            raise ValueError(
                f"character(s) {''.join(unknown)!r} are not in the {self.name} vocabulary"
            )
        return self.vocab[list(text)]

    def decode(self, ids) -> str:
        return "".join(self.vocab.to_tokens(list(ids)))

    def prompt(self, length: int, index: int = 0) -> str:
        """``length`` characters of validation text (assignment 004 seeds samples with 16)."""
        data = self.data["val"]
        start = (index * 9973) % max(data.numel() - length, 1)
        return self.decode(data[start : start + length].tolist())

    def _check_split(self, split: str) -> None:
        if split not in self.data:
            raise ValueError(f"unknown split {split!r}; {self.name} has {tuple(self.data)}")


def char_vocab(text: str) -> Vocab:
    """The sorted set of characters of ``text`` (no ``<unk>``: an unknown character is an error)."""
    return Vocab(sorted(set(text)), unk=None)


def encode_text(text: str, vocab: Vocab) -> torch.Tensor:
    """A long text to ``(N,)`` int64 ids (vectorised through code points)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = {ord(t): i for i, t in enumerate(vocab.idx_to_token)}
    lookup = np.full(max(table) + 1, -1, dtype=np.int64)
    lookup[list(table)] = list(table.values())
    ids = lookup[np.minimum(codes, len(lookup) - 1)]
    ids[codes >= len(lookup)] = -1
    if (ids < 0).any():
        bad = text[int(np.argmax(ids < 0))]
        raise ValueError(f"character {bad!r} is not in the vocabulary")
    return torch.from_numpy(ids)
