"""Translation datasets: English-French (d2l's ``fra-eng``) and English-Turkish sentence pairs.

The pipeline, all fixed by the config (so a run rebuilds the same splits and vocabularies):

1. read the tab-separated pairs (:mod:`seqfunc.data.sentence_pairs`); lines without a tab or
   with an empty side are **skipped and counted** (``bad_lines="error"`` stops at the first,
   naming its line);
2. keep pairs with at most ``max_words`` words on both sides (as written);
3. d2l's preprocessing (lowercase, non-breaking spaces to spaces, a space before ``,.!?``),
   then drop exact duplicate pairs;
4. hold out ``val_size`` and ``test_size`` pairs whose **source sentences never occur in
   training** (one translation each), with ``Random(seed)``;
5. train the tokenizers (word level or BPE) on the training split only, one per language.

Batches: ``{"src": (b, w), "tgt_in": (b, w), "tgt_out": (b, w)}``, bucketed by
``max(len(src), len(tgt))`` rounded up to ``pad_multiple`` (see
:mod:`seqfunc.data.bucketing`), training batches shuffled per epoch within a ``token_budget``.
Sources and targets end in ``<eos>``; ``tgt_in`` starts with ``<bos>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np
import torch

from seqfunc.config import ConfigError, one_of, positive
from seqfunc.data.bucketing import BucketedSplits, padded_width
from seqfunc.data.sentence_pairs import preprocess, read_pairs, split_by_source, word_count
from seqfunc.data.text_files import resolve_path
from seqfunc.data.text_tokenizers import BOS, EOS, PAD, TOKENIZERS, tokenizer_from_json
from seqfunc.errors import DataError
from seqfunc.serialization import read_json, write_json

TOKENIZER_FILE = "tokenizers.json"


@attrs.frozen
class TranslationConfig:
    #: the pair file; default: ``$SEQFUNC_DATA/fra-eng/fra.txt`` for fra-eng
    path: str | None = None
    #: translate the second column into the first (e.g. French -> English)
    reverse: bool = False
    max_words: int = attrs.field(default=8, validator=positive)
    tokenizer: str = attrs.field(default="word", validator=one_of(tuple(TOKENIZERS)))
    #: word level: words seen fewer times in training become <unk>
    min_freq: int = attrs.field(default=2, validator=positive)
    #: bpe: vocabulary size per language
    vocab_size: int = attrs.field(default=8000, validator=positive)
    val_size: int = attrs.field(default=2000, validator=positive)
    test_size: int = attrs.field(default=2000, validator=positive)
    #: use only the first N training pairs (after the split; None = all)
    max_train_pairs: int | None = attrs.field(default=None, validator=positive)
    #: longest tokenised sentence, with <eos>; longer pairs are dropped and counted
    max_len: int = attrs.field(default=32, validator=positive)
    pad_multiple: int = attrs.field(default=4, validator=positive)
    #: training batches hold at most this many token slots per side (None: batch_size rows)
    token_budget: int | None = attrs.field(default=None, validator=positive)
    bad_lines: str = attrs.field(default="skip", validator=one_of(("skip", "error")))
    seed: int = 0


class TranslationDataset(BucketedSplits):
    """Sentence-pair translation as a seq2seq dataset (see the module docstring)."""

    name: ClassVar[str] = "translation"
    task: ClassVar[str] = "seq2seq"
    Config: ClassVar[type] = TranslationConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    #: the file read when ``path`` is not given (relative to ``$SEQFUNC_DATA``)
    shared_file: ClassVar[str] = "fra-eng/fra.txt"
    #: ``seqfunc train fra-eng``: a small Transformer on 4,000-piece BPE vocabularies, sized so
    #: the run fits in 15 minutes on 2 CPU cores (the output layer dominates the cost of a
    #: word-level vocabulary of 14,000 French words; 4,000 pieces cost a third as much)
    train_defaults: ClassVar[dict] = {
        "model": "transformer",
        "dataset_options": {"tokenizer": "bpe", "vocab_size": 4000},
        "model_options": {
            "d_model": 128,
            "heads": 4,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "d_ff": 512,
            "dropout": 0.1,
        },
        "steps": 3600,
        "batch_size": 128,
        "optimizer": "adam",
        "lr": 2e-3,
        "schedule": "warmup_cosine",
        "warmup_steps": 300,
        "eval_every": 1000,
        "examples": 4,
    }
    #: ``seqfunc train fra-eng --model rnn-seq2seq``: assignment 001's LSTM encoder-decoder (teacher
    #: forcing 0.5, U(+-0.08) init, gradient clipping 1) on the same data and budget
    model_recipes: ClassVar[dict] = {
        "rnn-seq2seq": {
            "model_options": {
                "cell": "lstm",
                "embedding": 256,
                "hidden": 256,
                "layers": 2,
                "dropout": 0.3,
                "teacher_forcing": 0.5,
            },
            "steps": 2000,
            "lr": 2e-3,
            "warmup_steps": 200,
            "clip_norm": 1.0,
        },
    }

    def __init__(self, config: TranslationConfig | None = None, *, tokenizers: dict | None = None):
        """``tokenizers`` (``{"source": ..., "target": ...}``, from a run folder) skips training
        them; the pair file is then read only when a split is asked for."""
        self.config = config or TranslationConfig()
        self.stats: dict[str, int] = {}
        self._texts: dict[str, list[tuple[str, str]]] | None = None
        self._ids: dict[str, list[tuple[list[int], list[int]]]] | None = None
        if tokenizers is None:
            texts = self._load_texts()
            tokenizers = {
                side: self._train_tokenizer([pair[i] for pair in texts["train"]])
                for i, side in enumerate(("source", "target"))
            }
        self.source_tokenizer, self.target_tokenizer = tokenizers["source"], tokenizers["target"]
        self.source_vocab, self.target_vocab = (
            self.source_tokenizer.vocab,
            self.target_tokenizer.vocab,
        )
        self.pad_id, self.bos_id, self.eos_id = (self.target_vocab[t] for t in (PAD, BOS, EOS))
        self.max_source_len = self.max_target_len = self.config.max_len

    # -- building ----------------------------------------------------------------------------
    def _train_tokenizer(self, texts: list[str]):
        c = self.config
        if c.tokenizer == "bpe":
            return TOKENIZERS["bpe"].train(texts, vocab_size=c.vocab_size)
        return TOKENIZERS["word"].train(texts, min_freq=c.min_freq)

    def _load_texts(self) -> dict[str, list[tuple[str, str]]]:
        if self._texts is not None:
            return self._texts
        c = self.config
        path = resolve_path(c.path, self.shared_file, option="path", dataset=self.name)
        if path.is_dir():
            raise ConfigError(f"{self.name}: path={str(path)!r} is a folder; give the pair file")
        raw, bad = read_pairs(path, bad_lines=c.bad_lines)
        if c.reverse:
            raw = [(t, s) for s, t in raw]
        short = [
            (s, t) for s, t in raw if word_count(s) <= c.max_words and word_count(t) <= c.max_words
        ]
        pairs = list(dict.fromkeys((preprocess(s), preprocess(t)) for s, t in short))
        texts = split_by_source(pairs, sizes={"val": c.val_size, "test": c.test_size}, seed=c.seed)
        if c.max_train_pairs is not None:
            texts["train"] = texts["train"][: c.max_train_pairs]
        self.bad_lines = bad
        self.stats = {
            "lines": len(raw) + len(bad),
            "bad_lines": len(bad),
            "too_many_words": len(raw) - len(short),
            "duplicates": len(short) - len(pairs),
        }
        self._texts = texts
        return texts

    def _encoded(self) -> dict[str, list[tuple[list[int], list[int]]]]:
        """Per split, ``(source ids, target ids)`` (no ``<eos>``) sorted by padded width; the
        texts in ``self._texts`` are reordered the same way."""
        if self._ids is not None:
            return self._ids
        texts = self._load_texts()
        limit = self.config.max_len - 1
        ids, kept_texts = {}, {}
        for split, pairs in texts.items():
            rows = []
            for s, t in pairs:
                src, tgt = self.source_tokenizer.encode(s), self.target_tokenizer.encode(t)
                if len(src) <= limit and len(tgt) <= limit:
                    rows.append(((src, tgt), (s, t)))
            self.stats[f"{split}_too_long"] = len(pairs) - len(rows)
            rows.sort(key=lambda row: self._width(row[0]))
            ids[split] = [r[0] for r in rows]
            kept_texts[split] = [r[1] for r in rows]
        self._texts, self._ids = kept_texts, ids
        return ids

    def _width(self, pair: tuple[list[int], list[int]]) -> int:
        return padded_width(
            max(len(pair[0]), len(pair[1])) + 1,
            max_len=self.config.max_len,
            pad_multiple=self.config.pad_multiple,
        )

    # -- run folders ---------------------------------------------------------------------------
    def save_artifacts(self, folder: str | Path) -> None:
        """Write the tokenizers into a run folder (so the run translates without the data)."""
        write_json(
            Path(folder) / TOKENIZER_FILE,
            {"source": self.source_tokenizer.to_json(), "target": self.target_tokenizer.to_json()},
        )

    @classmethod
    def from_artifacts(cls, config: TranslationConfig, folder: str | Path) -> TranslationDataset:
        data = read_json(Path(folder) / TOKENIZER_FILE, error=DataError)
        return cls(
            config,
            tokenizers={side: tokenizer_from_json(data[side]) for side in ("source", "target")},
        )

    # -- the dataset contract ----------------------------------------------------------------
    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; this dataset has {self.splits}")

    def num_examples(self, split: str) -> int:
        self._check_split(split)
        return len(self._encoded()[split])

    def _lengths(self, split: str) -> list[int]:
        return [max(len(s), len(t)) + 1 for s, t in self._encoded()[split]]

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Width-bucketed batches; training ones shuffled per ``(seed, epoch)``. Nothing is
        dropped (``drop_last`` is accepted for the contract)."""
        self._check_split(split)
        pairs = self._encoded()[split]
        for index in self.batch_indices(split, batch_size, epoch=epoch):
            yield self.collate([pairs[i] for i in index])

    def collate(self, pairs: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        width = max(self._width(p) for p in pairs)
        src = np.full((len(pairs), width), self.pad_id, dtype=np.int64)
        tgt_in = np.full_like(src, self.pad_id)
        tgt_out = np.full_like(src, self.pad_id)
        for row, (s, t) in enumerate(pairs):
            src[row, : len(s) + 1] = [*s, self.eos_id]
            tgt_in[row, : len(t) + 1] = [self.bos_id, *t]
            tgt_out[row, : len(t) + 1] = [*t, self.eos_id]
        return {
            "src": torch.from_numpy(src),
            "tgt_in": torch.from_numpy(tgt_in),
            "tgt_out": torch.from_numpy(tgt_out),
        }

    # -- text in and out -------------------------------------------------------------------
    def texts(self, split: str) -> list[tuple[str, str]]:
        """The preprocessed ``(source, reference)`` sentences of a split (references keep the
        words a word-level vocabulary lacks: BLEU is scored against them)."""
        self._check_split(split)
        self._encoded()
        return list(self._texts[split])

    def encode_source(self, text: str) -> list[int]:
        """A sentence (raw) to source ids with ``<eos>``; words outside the vocabulary become
        ``<unk>``. Raises ``ValueError`` for an empty or too long sentence."""
        clean = preprocess(text)
        if not clean:
            raise ValueError("the sentence is empty")
        ids = self.source_tokenizer.encode(clean)
        if len(ids) >= self.config.max_len:
            raise ValueError(
                f"the sentence has {len(ids)} tokens; this model accepts at most "
                f"{self.config.max_len - 1}"
            )
        return [*ids, self.eos_id]

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` the source vocabulary lacks (they are read as ``<unk>``)."""
        return self.source_tokenizer.unknown_words(preprocess(text))

    def _decode(self, tokenizer, ids) -> str:
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return tokenizer.decode(ids)

    def decode_source(self, ids) -> str:
        return self._decode(self.source_tokenizer, ids)

    def decode_target(self, ids) -> str:
        return self._decode(self.target_tokenizer, ids)

    def summary(self) -> str:
        """One line on what was read and dropped (after the splits are built)."""
        self._encoded()
        sizes = ", ".join(f"{s} {len(self._ids[s]):,}" for s in self.splits)
        dropped = ", ".join(f"{k} {v:,}" for k, v in self.stats.items() if v and k != "lines")
        return (
            f"{self.name}: {self.stats['lines']:,} lines -> {sizes} pairs; vocab "
            f"{len(self.source_vocab):,} / {len(self.target_vocab):,} ({self.config.tokenizer})"
            + (f"; dropped: {dropped}" if dropped else "")
        )


class FraEngDataset(TranslationDataset):
    """English -> French, d2l's ``fra-eng`` file (``reverse=True``: French -> English)."""

    name: ClassVar[str] = "fra-eng"
    shared_file: ClassVar[str] = "fra-eng/fra.txt"


class TurEngDataset(TranslationDataset):
    """English -> Turkish (``reverse=True``: Turkish -> English, the seed's direction)."""

    name: ClassVar[str] = "tur-eng"
    shared_file: ClassVar[str] = "tur-eng/tur.txt"
