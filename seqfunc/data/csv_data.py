"""``csv``: text classification from any CSV, TSV or JSONL file with a text and a label column.

``seqfunc train csv -d path=reviews.csv`` (then ``seqfunc predict RUN "some text"``). Each row
is one example: ``text_column`` holds the text, ``label_column`` its class, any string (or, in
JSONL, any scalar). The classes are the distinct labels of ``path``, sorted (numbers
numerically); their names are kept in the run folder, so ``predict`` answers with them.

The format follows the file's suffix (``.tsv``/``.tab``: tab-separated, ``.jsonl``/``.ndjson``:
one JSON object a line, anything else: CSV with a header row) unless ``format`` says.
Validation: the rows of ``val_path`` when given, else ``val_fraction`` of the rows (at least
one) drawn with ``Random(seed)``, or exactly ``val_size`` rows.

Texts are tokenised as IMDb's (:func:`seqfunc.data.classification.tokenize`: lowercase
letters, whitespace-split); the vocabulary is the training words by frequency, optionally
capped (``vocab_size``). Batches are length-bucketed ``{"tokens": (b, t), "label": (b,)}``.

Bad rows (a missing label, an empty text, a JSON line that does not parse, a label the
training file lacks in ``val_path``): a one-line :class:`DataError` naming the file and line, or
with ``bad_rows=skip`` left out and counted (as IMDb's).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import ClassVar

import attrs

from seqfunc.config import one_of, positive, probability
from seqfunc.data.classification import ClassificationData, frequency_vocab
from seqfunc.data.imdb import Problem, Record, check_records
from seqfunc.data.text_files import allow_csv_field, read_utf8, require_regular
from seqfunc.data.vocab import Vocab
from seqfunc.errors import ConfigError, DataError
from seqfunc.serialization import read_json, write_json

FORMATS = ("csv", "tsv", "jsonl")
ARTIFACT_FILE = "classes.json"


@attrs.frozen
class CsvConfig:
    #: the training file (CSV, TSV or JSONL); required
    path: str | None = None
    #: a validation file of the same layout (default: rows held out of ``path``)
    val_path: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    #: csv, tsv or jsonl; None: from the file's suffix
    format: str | None = attrs.field(default=None, validator=one_of(FORMATS))
    #: rows held out for validation when there is no ``val_path`` (at least one)
    val_fraction: float = attrs.field(default=0.1, validator=[positive, probability])
    #: exactly this many held-out rows instead of ``val_fraction``
    val_size: int | None = attrs.field(default=None, validator=positive)
    vocab_size: int | None = attrs.field(default=None, validator=positive)
    #: longest text in tokens (longer ones keep their first max_len tokens)
    max_len: int = attrs.field(default=256, validator=positive)
    pad_multiple: int = attrs.field(default=16, validator=positive)
    token_budget: int | None = attrs.field(default=None, validator=positive)
    bad_rows: str = attrs.field(default="error", validator=one_of(("error", "skip")))
    seed: int = 0


def file_format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    suffix = path.suffix.lower()
    return (
        "tsv"
        if suffix in (".tsv", ".tab")
        else "jsonl"
        if suffix in (".jsonl", ".ndjson")
        else "csv"
    )


def read_rows(
    path: Path,
    columns: tuple[str, ...],
    *,
    fmt: str | None = None,
    options: str = "text_column/label_column",
) -> Iterator[tuple[str, dict | Problem]]:
    """``(where, {column: text})`` per row of a CSV/TSV (header row) or JSONL file, or
    ``(where, Problem)`` for a row that lacks a column. A header without a column is a
    :class:`DataError` at once (it names ``options``, the fields that choose the columns)."""
    content = read_utf8(path)
    fmt = file_format(path, fmt)
    if not content.strip():
        raise DataError(f"{path}:1: the file is empty")
    if fmt == "jsonl":
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                yield where, Problem(where, f"not a JSON object ({exc})")
                continue
            if not isinstance(row, dict):
                yield where, Problem(where, f"not a JSON object (a {type(row).__name__})")
                continue
            missing = [c for c in columns if row.get(c) is None]
            if missing:
                yield (
                    where,
                    Problem(
                        where,
                        f"no {' or '.join(map(repr, missing))} field "
                        f"(choose the fields with {options})",
                    ),
                )
                continue
            yield (
                where,
                {c: row[c] if isinstance(row[c], str) else json.dumps(row[c]) for c in columns},
            )
        return
    allow_csv_field(len(content))
    reader = csv.DictReader(
        io.StringIO(content, newline=""), delimiter="\t" if fmt == "tsv" else ","
    )
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(
            f"{path}:1: the header has no column {' or '.join(map(repr, missing))} "
            f"(columns: {', '.join(header) or 'none'}; choose them with {options})"
        )
    for row in reader:
        where = f"{path}:{reader.line_num}"
        values = {c: row.get(c) for c in columns}
        empty = [c for c, v in values.items() if v is None or (c != columns[0] and not v.strip())]
        if empty:
            yield where, Problem(where, f"the row has no {' or '.join(map(repr, empty))} value")
            continue
        yield where, values


def label_order(labels) -> list[str]:
    """Distinct labels sorted, numbers numerically (``2 < 10``), then the others."""

    def key(label: str):
        try:
            return (0, float(label), label)
        except ValueError:
            return (1, 0.0, label)

    return sorted(set(labels), key=key)


class CsvDataset(ClassificationData):
    """Text classification from a file of rows (see the module docstring)."""

    name: ClassVar[str] = "csv"
    Config: ClassVar[type] = CsvConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    full_training_batches: ClassVar[bool] = True
    #: ``seqfunc train csv -d path=FILE``: the mean-pool baseline, 10 epochs at a high rate for
    #: small files (the IMDb 1,000-review sample: 0.81 validation accuracy at lr 1e-2, 0.72 at
    #: IMDb's 2e-3)
    train_defaults: ClassVar[dict] = {
        "model": "baseline",
        "epochs": 10,
        "batch_size": 32,
        "optimizer": "adam",
        "lr": 1e-2,
        "schedule": "warmup_cosine",
        "warmup_steps": 20,
        "clip_norm": 1.0,
        "eval_batch_size": 256,
        "examples": 3,
        "model_options": {"pool": "mean", "d_model": 64},
    }

    def __init__(self, config: CsvConfig | None = None, *, artifacts: dict | None = None):
        """``artifacts`` (what :meth:`save_artifacts` wrote: vocabulary and classes) skip
        reading the data until batches are asked for."""
        self.config = config or CsvConfig()
        self.skipped: list[Problem] = []
        self._splits_data = None
        if artifacts is None:
            self._load()
        else:
            self.vocab = Vocab.from_json(artifacts["vocab"])
            self.classes = tuple(artifacts["classes"])

    # -- reading ----------------------------------------------------------------------------
    def _source(self, option: str) -> Path:
        value = getattr(self.config, option)
        path = Path(value).expanduser()
        require_regular(path, f"csv: {option}={value!r}")
        if not path.is_file():
            raise ConfigError(f"csv: {option}={value!r}: no such file")
        return path

    def _records(self, option: str) -> list[tuple[list[str], str]]:
        c = self.config
        path = self._source(option)
        items = []
        for where, row in read_rows(path, (c.text_column, c.label_column), fmt=c.format):
            items.append(
                (
                    "train",
                    row
                    if isinstance(row, Problem)
                    else Record(row[c.text_column], row[c.label_column].strip(), where),
                )
            )
        raw, skipped = check_records(
            items, bad_rows=c.bad_rows, source=path, name=self.name, item="text"
        )
        self.skipped += skipped
        return raw["train"]

    def _load(self) -> None:
        c = self.config
        if not c.path:
            raise ConfigError(
                "csv: no file given; set the dataset option path "
                "(seqfunc train csv -d path=FILE.csv)"
            )
        train = self._records("path")
        labels = [label for _, label in train]  # the classes: every label of path
        if c.val_path:
            val = self._records("val_path")
        else:
            n = len(train)
            size = c.val_size if c.val_size is not None else max(1, round(n * c.val_fraction))
            if size >= n:
                option = (
                    f"val_size={c.val_size}"
                    if c.val_size is not None
                    else f"val_fraction={c.val_fraction}"
                )
                raise DataError(
                    f"{c.path}: {n} usable row(s); holding out {size} for validation ({option}) "
                    f"leaves none to train on: lower -d {option.split('=')[0]}= or give a validation "
                    "file with -d val_path=FILE"
                )
            held = set(Random(c.seed).sample(range(n), k=size))
            val = [row for i, row in enumerate(train) if i in held]
            train = [row for i, row in enumerate(train) if i not in held]
        if not hasattr(self, "classes"):
            self.classes = tuple(label_order(labels))
            self.vocab = frequency_vocab((tokens for tokens, _ in train), c.vocab_size)
        index = {name: i for i, name in enumerate(self.classes)}
        new = [label for _, label in train if label not in index]
        if new:  # only class names saved with a run can lack one: the file changed since
            raise DataError(
                f"{c.path}: label {new[0]!r} is not among the classes saved with "
                f"the run ({ARTIFACT_FILE}: {', '.join(self.classes)}); the file "
                "changed since the run started: restore it, or start a new run "
                "with another --out"
            )
        unknown = [label for _, label in val if label not in index]
        if unknown:
            source = c.val_path or c.path
            raise DataError(
                f"{source}: validation label {unknown[0]!r} never occurs in the "
                f"training rows (classes: {', '.join(self.classes)})"
            )
        self._splits_data = {"train": self._ids(train, index), "val": self._ids(val, index)}
        self._finish()

    def _ids(self, rows, index) -> tuple[list[list[int]], list[int]]:
        words, unk = self.vocab.token_to_idx, self.vocab[self.vocab.unk]
        return [[words.get(t, unk) for t in tokens] for tokens, _ in rows], [
            index[label] for _, label in rows
        ]

    @property
    def splits_data(self):
        if self._splits_data is None:
            self._load()
        return self._splits_data

    @splits_data.setter
    def splits_data(self, value) -> None:
        self._splits_data = value

    # -- run folders ------------------------------------------------------------------------
    def save_artifacts(self, folder: str | Path) -> None:
        """Write the vocabulary and the class names into a run folder."""
        write_json(
            Path(folder) / ARTIFACT_FILE,
            {"classes": list(self.classes), "vocab": self.vocab.to_json()},
        )

    @classmethod
    def from_artifacts(cls, config: CsvConfig, folder: str | Path) -> CsvDataset:
        return cls(config, artifacts=read_json(Path(folder) / ARTIFACT_FILE, error=DataError))

    def summary(self) -> str:
        sizes = ", ".join(f"{s} {len(self.splits_data[s][0]):,}" for s in self.splits)
        skipped = f"; skipped {len(self.skipped)} bad row(s)" if self.skipped else ""
        return (
            f"csv: {self.config.path}: {sizes} rows; {len(self.classes)} classes "
            f"({', '.join(self.classes[:10])}{', ...' if len(self.classes) > 10 else ''}); "
            f"vocabulary {len(self.vocab):,}{skipped}"
        )
