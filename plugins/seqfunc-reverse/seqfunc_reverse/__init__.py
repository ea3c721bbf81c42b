"""Two seq2seq toy tasks on random letter strings: reverse them, or sort them.

``ReverseDataset``: ``"cabd" -> "dbac"``; ``SortDataset``: ``"cabd" -> "abcd"``. Batches follow
seqfunc's seq2seq contract: ``{"src": (b, L+1), "tgt_in": (b, L+1), "tgt_out": (b, L+1)}``
with ``L = max_len`` (fixed shapes, so a compiled step never recompiles).
"""

from __future__ import annotations

from collections.abc import Iterator
from random import Random
from typing import ClassVar

import attrs
import numpy as np
import torch

from seqfunc.config import ConfigError, positive
from seqfunc.data import Vocab, pad_batch

__all__ = ["StringTaskConfig", "ReverseDataset", "SortDataset"]
__version__ = "0.1.0"

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@attrs.frozen
class StringTaskConfig:
    """Strings of ``min_len..max_len`` letters drawn from the first ``alphabet`` letters."""

    alphabet: int = attrs.field(default=8, validator=positive)
    min_len: int = attrs.field(default=1, validator=positive)
    max_len: int = attrs.field(default=8, validator=positive)
    train_size: int = attrs.field(default=20_000, validator=positive)
    val_size: int = attrs.field(default=500, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self):
        if self.alphabet > len(LETTERS):
            raise ConfigError(f"StringTaskConfig.alphabet={self.alphabet}: must be <= 26")
        if self.min_len > self.max_len:
            raise ConfigError(
                f"StringTaskConfig.min_len={self.min_len}: must be <= max_len={self.max_len}"
            )


class _StringTask:
    """Shared machinery; a subclass sets ``name`` and ``transform``."""

    task: ClassVar[str] = "seq2seq"
    Config: ClassVar[type] = StringTaskConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    #: What `seqfunc train reverse` starts from (any flag overrides it).
    train_defaults: ClassVar[dict] = {
        "model": "transformer",
        "steps": 400,
        "batch_size": 64,
        "lr": 3e-3,
        "warmup_steps": 40,
        "eval_every": 200,
        "eval_batch_size": 250,
    }

    @staticmethod
    def transform(text: str) -> str:
        raise NotImplementedError

    def __init__(self, config: StringTaskConfig | None = None):
        self.config = config or StringTaskConfig()
        letters = list(LETTERS[: self.config.alphabet])
        self.source_vocab = self.target_vocab = Vocab.d2l(
            letters, reserved_tokens=["<pad>", "<bos>", "<eos>"]
        )
        self.pad_id = self.source_vocab["<pad>"]
        self.bos_id = self.source_vocab["<bos>"]
        self.eos_id = self.source_vocab["<eos>"]
        self.max_source_len = self.max_target_len = self.config.max_len + 1  # + <eos>

    # -- the dataset contract ------------------------------------------------------------------
    def num_examples(self, split: str) -> int:
        self._check_split(split)
        return self.config.train_size if split == "train" else self.config.val_size

    def strings(self, split: str) -> list[str]:
        """The source strings of a split, in order (val and train come from separate streams)."""
        cfg = self.config
        rng = Random(f"{cfg.seed}:{split}")
        letters = LETTERS[: cfg.alphabet]
        return [
            "".join(rng.choice(letters) for _ in range(rng.randint(cfg.min_len, cfg.max_len)))
            for _ in range(self.num_examples(split))
        ]

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Training batches are reshuffled per epoch (``Random(seed, epoch)``), fixed shape."""
        if batch_size <= 0:
            raise ConfigError(f"batch_size={batch_size}: must be > 0")
        drop_last = split == "train" if drop_last is None else drop_last
        items = self.strings(split)
        if split == "train":
            Random(f"{self.config.seed}:epoch:{epoch}").shuffle(items)
        stop = len(items) - len(items) % batch_size if drop_last else len(items)
        for start in range(0, stop, batch_size):
            yield self.collate(items[start : start + batch_size])

    def collate(self, sources: list[str]) -> dict[str, torch.Tensor]:
        src = pad_batch([self.encode_source(s) for s in sources], self.max_source_len, self.pad_id)
        targets = [self.source_vocab[list(self.transform(s))] + [self.eos_id] for s in sources]
        tgt_out = pad_batch(targets, self.max_target_len, self.pad_id)
        tgt_in = np.concatenate([np.full((len(sources), 1), self.bos_id), tgt_out[:, :-1]], axis=1)
        return {
            "src": torch.from_numpy(src),
            "tgt_in": torch.from_numpy(tgt_in),
            "tgt_out": torch.from_numpy(tgt_out),
        }

    # -- text in and out (`seqfunc predict`, printed examples) ---------------------------------
    def encode_source(self, text: str) -> list[int]:
        unknown = self.source_vocab.unknown(list(text))
        if not text or unknown:
            allowed = LETTERS[: self.config.alphabet]
            raise ValueError(
                f"expected 1-{self.config.max_len} letters of {allowed!r}, got {text!r}"
            )
        if len(text) > self.config.max_len:
            raise ValueError(f"{text!r} has {len(text)} letters; at most {self.config.max_len}")
        return self.source_vocab[list(text)] + [self.eos_id]

    def decode_source(self, ids) -> str:
        return self._decode(ids)

    def decode_target(self, ids) -> str:
        return self._decode(ids)

    def _decode(self, ids) -> str:
        out = []
        for token in self.source_vocab.to_tokens(list(ids)):
            if token == "<eos>":
                break
            if token not in ("<pad>", "<bos>"):
                out.append(token)
        return "".join(out)

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; this dataset has {self.splits}")


class ReverseDataset(_StringTask):
    """``"cabd" -> "dbac"``."""

    name: ClassVar[str] = "reverse"

    @staticmethod
    def transform(text: str) -> str:
        return text[::-1]


class SortDataset(_StringTask):
    """``"cabd" -> "abcd"``."""

    name: ClassVar[str] = "sort"

    @staticmethod
    def transform(text: str) -> str:
        return "".join(sorted(text))
