"""``pairs``: sequence to sequence from any file of (source, target) pairs.

``seqfunc train pairs -d path=pairs.tsv`` (then ``seqfunc predict RUN "a source"``). The file
is tab-separated, ``source<TAB>target`` a line (further columns are ignored), or, by its
suffix or ``format``, a CSV with a header / JSONL with ``source_column`` and
``target_column``. The pipeline is the translation datasets' (:mod:`seqfunc.data.translation`)
with defaults for data of any kind:

* no word limit (``max_words``), words seen once stay in the vocabulary (``min_freq=1``);
* ``preprocess=True`` is d2l's (lowercase, a space before ``, . ! ?``); ``false`` keeps the
  text as written (whitespace normalised);
* ``val_fraction`` of the distinct source sentences (at least one) are held out for
  validation, or exactly ``val_size``; a held-out source never occurs in training;
* tokenizers (``word``, or ``bpe`` with ``vocab_size``) are trained on the training split and
  saved in the run folder.

Bad lines (no tab, an empty side, a missing field): a one-line :class:`DataError` naming the
file and line, or with ``bad_rows=skip`` left out and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import attrs

from seqfunc.config import one_of, positive, probability
from seqfunc.data.csv_data import FORMATS, read_rows
from seqfunc.data.imdb import Problem
from seqfunc.data.sentence_pairs import (
    BadLine,
    parse_pairs,
    preprocess,
    split_by_source,
    word_count,
)
from seqfunc.data.text_files import read_utf8, require_regular
from seqfunc.data.text_tokenizers import TOKENIZERS
from seqfunc.data.translation import TranslationDataset
from seqfunc.errors import ConfigError, DataError


@attrs.frozen
class PairsConfig:
    #: the pair file (TSV, CSV or JSONL); required
    path: str | None = None
    #: tsv, csv or jsonl; None: from the suffix (.csv, .jsonl/.ndjson; anything else is TSV)
    format: str | None = attrs.field(default=None, validator=one_of(FORMATS))
    #: CSV / JSONL: the fields holding the source and the target
    source_column: str = "source"
    target_column: str = "target"
    #: map the second column to the first
    reverse: bool = False
    #: d2l's preprocessing (lowercase, a space before , . ! ?); false: as written
    preprocess: bool = True
    #: keep pairs with at most this many words on both sides (None: all)
    max_words: int | None = attrs.field(default=None, validator=positive)
    tokenizer: str = attrs.field(default="word", validator=one_of(tuple(TOKENIZERS)))
    #: word level: words seen fewer times in training become <unk>
    min_freq: int = attrs.field(default=1, validator=positive)
    #: bpe: vocabulary size per side
    vocab_size: int = attrs.field(default=4000, validator=positive)
    #: distinct source sentences held out for validation (at least one)
    val_fraction: float = attrs.field(default=0.1, validator=[positive, probability])
    #: exactly this many held-out pairs instead of ``val_fraction``
    val_size: int | None = attrs.field(default=None, validator=positive)
    #: use only the first N training pairs (None: all)
    max_train_pairs: int | None = attrs.field(default=None, validator=positive)
    #: longest tokenised sentence, with <eos>; longer pairs are dropped and counted
    max_len: int = attrs.field(default=64, validator=positive)
    pad_multiple: int = attrs.field(default=4, validator=positive)
    token_budget: int | None = attrs.field(default=None, validator=positive)
    bad_rows: str = attrs.field(default="error", validator=one_of(("error", "skip")))
    seed: int = 0


def read_pair_file(path: Path, config: PairsConfig) -> tuple[list[tuple[str, str]], list]:
    """``(pairs, bad lines)``; with ``bad_rows="error"`` the first bad line raises a
    :class:`DataError` naming the file and line."""
    fmt = config.format or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        path.suffix.lower(), "tsv"
    )
    if fmt == "tsv":
        text = read_utf8(path)
        if not text.strip():
            raise DataError(f"{path}:1: the file is empty")
        pairs, bad = parse_pairs(text)
        bad = [Problem(f"{path}:{b.line}", b.reason) for b in bad]
    else:
        columns = (config.source_column, config.target_column)
        pairs, bad = [], []
        for where, row in read_rows(path, columns, fmt=fmt, options="source_column/target_column"):
            if isinstance(row, Problem):
                bad.append(row)
                continue
            source, target = (row[c].strip() for c in columns)
            if not source or not target:
                bad.append(Problem(where, f"empty {'source' if not source else 'target'} side"))
                continue
            pairs.append((source, target))
    if bad and config.bad_rows == "error":
        more = f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        raise DataError(f"{bad[0]}{more} (pass -d bad_rows=skip to leave such lines out)")
    if not pairs:
        raise DataError(f"{path}: no pairs (expected lines 'source<TAB>target')")
    return pairs, bad


class PairsDataset(TranslationDataset):
    """Pairs from a file as a seq2seq dataset; splits ``train`` and ``val``."""

    name: ClassVar[str] = "pairs"
    Config: ClassVar[type] = PairsConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    full_training_batches: ClassVar[bool] = True
    #: ``seqfunc train pairs -d path=FILE``: a small Transformer
    train_defaults: ClassVar[dict] = {
        "model": "transformer",
        "model_options": {
            "d_model": 128,
            "heads": 4,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "d_ff": 512,
            "dropout": 0.1,
        },
        "steps": 2000,
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 1e-3,
        "schedule": "warmup_cosine",
        "warmup_steps": 100,
        "examples": 3,
    }
    model_recipes: ClassVar[dict] = {}

    def _load_texts(self) -> dict[str, list[tuple[str, str]]]:
        if self._texts is not None:
            return self._texts
        c = self.config
        if not c.path:
            raise ConfigError(
                "pairs: no file given; set the dataset option path "
                "(seqfunc train pairs -d path=FILE.tsv)"
            )
        path = Path(c.path).expanduser()
        require_regular(path, f"pairs: path={c.path!r}")
        if not path.is_file():
            raise ConfigError(f"pairs: path={c.path!r}: no such file")
        raw, bad = read_pair_file(path, c)
        if c.reverse:
            raw = [(t, s) for s, t in raw]
        short = (
            raw
            if c.max_words is None
            else [
                (s, t)
                for s, t in raw
                if word_count(s) <= c.max_words and word_count(t) <= c.max_words
            ]
        )
        clean = preprocess if c.preprocess else (lambda text: " ".join(text.split()))
        pairs = list(dict.fromkeys((clean(s), clean(t)) for s, t in short))
        sources = len({s for s, _ in pairs})
        size = c.val_size if c.val_size is not None else max(1, round(sources * c.val_fraction))
        if size >= sources:
            option = "val_size" if c.val_size is not None else "val_fraction"
            raise DataError(
                f"{path}: {sources} distinct source sentence(s); holding out {size} for "
                f"validation ({option}={getattr(c, option)}) leaves none to train on: lower "
                f"-d {option}= or give more pairs"
            )
        texts = split_by_source(pairs, sizes={"val": size}, seed=c.seed)
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

    def _clean(self, text: str) -> str:
        return preprocess(text) if self.config.preprocess else " ".join(text.split())

    def encode_source(self, text: str) -> list[int]:
        """A source (raw) to ids with ``<eos>``; words outside the vocabulary become
        ``<unk>``. Raises ``ValueError`` for an empty or too long source."""
        clean = self._clean(text)
        if not clean:
            raise ValueError("the source is empty")
        ids = self.source_tokenizer.encode(clean)
        if len(ids) >= self.config.max_len:
            raise ValueError(
                f"the source has {len(ids)} tokens; this model accepts at most "
                f"{self.config.max_len - 1} (dataset option max_len)"
            )
        return [*ids, self.eos_id]

    def unknown_words(self, text: str) -> list[str]:
        return self.source_tokenizer.unknown_words(self._clean(text))


__all__ = ["PairsConfig", "PairsDataset", "read_pair_file", "BadLine"]
