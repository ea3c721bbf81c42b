"""IMDb movie-review sentiment (Maas et al., 2011) as a classification dataset (assignment 004, part 1).

Sources (``path``):

* the ``aclImdb/{train,test}/{pos,neg}/*.txt`` folder (the folder itself or its parent);
* the same layout inside a ``.tar.gz`` / ``.tgz``, read member by member, never unpacked;
* a CSV file with a review column and a sentiment column (``review,sentiment`` by default;
  labels ``1/0``, ``pos/neg`` or ``positive/negative``). Reviews written as Python bytes
  literals (``b"..."``, as in ``imdb_sample.csv``) are decoded as UTF-8. A CSV has only a
  training split.

Labels: 0 = negative, 1 = positive. Tokenised as the seed says (:func:`tokenize`);
vocabulary ``.pad .start .end .unk`` + training words by frequency, optionally capped
(``vocab_size``); built from the training examples only. ``final=False`` holds ``val_size``
random training reviews out as ``val``; ``final=True`` makes ``val`` the canonical test split.
``test`` is always the canonical test split (when the source has one).

Bad input (a missing column, an empty review, an unknown label, bytes that are not UTF-8):
with ``bad_rows="error"`` (the default) a :class:`DataError` naming the file and line (or
archive member); with ``bad_rows="skip"`` the row is left out, and the count skipped, with the
first few places, is printed to stderr and kept in ``dataset.skipped``.
"""

from __future__ import annotations

import ast
import csv
import io
import re
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from random import Random
from typing import ClassVar

import attrs

from seqfunc.config import ConfigError, positive
from seqfunc.data.classification import ClassificationData, frequency_vocab, tokenize
from seqfunc.data.text_files import (
    BOM,
    DATA_ENV,
    allow_csv_field,
    data_root,
    read_bytes,
    require_regular,
)
from seqfunc.errors import DataError  # re-exported from here too

CLASSES = ("negative", "positive")
LABEL_NAMES = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}

#: The default archive, relative to :func:`seqfunc.data.text_files.data_root`.
DEFAULT_ARCHIVE = "imdb/aclImdb_v1_labelled.tar.gz"

_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


@attrs.frozen
class Record:
    """One raw review: its text, label and where it came from (``file:line`` or member)."""

    text: str
    label: int
    where: str


@attrs.frozen
class Problem:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


# -- readers ---------------------------------------------------------------------------------


def _decode(raw: bytes, where: str) -> str | Problem:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(where, f"bytes that are not UTF-8 at offset {exc.start}")


def _folder_member(name: str) -> tuple[str, int, int] | None:
    """``(split, label, review id)`` for a review path of the aclImdb layout, else None."""
    match = _MEMBER.search(name.replace("\\", "/"))
    if not match:
        return None
    return match.group(1), int(match.group(2) == "pos"), int(match.group(3))


def read_archive(path: Path) -> Iterator[tuple[str, Record | Problem]]:
    """``(split, record)`` for every review in an aclImdb ``.tar.gz``, in the canonical order
    (split, label, id) whatever the archive's order (so a folder gives the same splits)."""
    found = []
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            place = _folder_member(member.name) if member.isfile() else None
            if place is None:
                continue
            where = f"{path}:{member.name}"
            text = _decode(archive.extractfile(member).read(), where)
            item = text if isinstance(text, Problem) else Record(text, place[1], where)
            found.append((place, item))
    found.sort(key=lambda pair: pair[0])
    return ((place[0], item) for place, item in found)


def read_folder(path: Path) -> Iterator[tuple[str, Record | Problem]]:
    """``(split, record)`` for every review under an aclImdb folder (sorted by path)."""
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    files = [(_folder_member(f.relative_to(root).as_posix()), f) for f in root.glob("*/*/*.txt")]
    for place, file in sorted((p, f) for p, f in files if p is not None):
        text = _decode(file.read_bytes(), str(file))
        yield place[0], text if isinstance(text, Problem) else Record(text, place[1], str(file))


def _unwrap_bytes_literal(field: str, where: str) -> str | Problem:
    """``b"..."`` / ``b'...'`` (a Python bytes literal written as text) -> its UTF-8 text."""
    if len(field) >= 3 and field[0] == "b" and field[1] in "'\"" and field[-1] == field[1]:
        try:
            raw = ast.literal_eval(field)
        except (ValueError, SyntaxError) as exc:
            return Problem(where, f"review looks like a bytes literal but does not parse ({exc})")
        return _decode(raw, where)
    return field


def read_csv(
    path: Path, *, text_column: str = "review", label_column: str = "sentiment"
) -> Iterator[tuple[str, Record | Problem]]:
    """``("train", record)`` per data row of a CSV with a header row."""
    raw = read_bytes(path)
    try:
        content = raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: bytes that are not UTF-8 (byte {exc.start}); "
            "the CSV must be UTF-8 text"
        ) from None
    allow_csv_field(len(content))
    reader = csv.DictReader(io.StringIO(content, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise DataError(
            f"{path}:1: the header has no column {' or '.join(map(repr, missing))} "
            f"(columns: {', '.join(header) or 'none'}; choose with text_column/label_column)"
        )
    for row in reader:
        where = f"{path}:{reader.line_num}"
        text, label = row.get(text_column), row.get(label_column)
        if text is None or label is None:
            yield "train", Problem(where, "the row has fewer fields than the header")
            continue
        label_id = LABEL_NAMES.get(label.strip().lower())
        if label_id is None:
            yield (
                "train",
                Problem(
                    where, f"label {label!r} is not one of {', '.join(sorted(set(LABEL_NAMES)))}"
                ),
            )
            continue
        text = _unwrap_bytes_literal(text, where)
        yield "train", text if isinstance(text, Problem) else Record(text, label_id, where)


def read_source(path: Path, **csv_options) -> Iterator[tuple[str, Record | Problem]]:
    """Dispatch on what ``path`` is: folder, tar archive or CSV."""
    if not path.exists():
        raise DataError(f"IMDb data not found at {path} (set the dataset option path=...)")
    require_regular(path, f"imdb: path={str(path)!r}")
    if path.is_dir():
        return read_folder(path)
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return read_archive(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path, **csv_options)
    raise DataError(f"{path}: expected an aclImdb folder, a .tar.gz archive or a .csv file")


def check_records(
    items: Iterable[tuple[str, Record | Problem]],
    *,
    bad_rows: str,
    source: Path,
    name: str = "imdb",
    item: str = "review",
) -> tuple[dict[str, list[tuple[list[str], int]]], list[Problem]]:
    """Tokenise; reject (or, with ``bad_rows="skip"``, collect) the bad rows. ``name`` (the
    dataset) and ``item`` (what a row holds) word the messages.

    Returns ``{split: [(tokens, label), ...]}`` and the problems skipped.
    """
    splits: dict[str, list[tuple[list[str], int]]] = {}
    problems: list[Problem] = []
    for split, entry in items:
        if isinstance(entry, Record):
            tokens = tokenize(entry.text)
            if tokens:
                splits.setdefault(split, []).append((tokens, entry.label))
                continue
            entry = Problem(entry.where, f"the {item} is empty (no words after tokenising)")
        if bad_rows == "error":
            raise DataError(f"{entry} (pass -d bad_rows=skip to leave such rows out)")
        problems.append(entry)
    if problems:
        shown = "; ".join(map(str, problems[:3]))
        print(
            f"{name}: skipped {len(problems)} bad row(s) of {source}: {shown}"
            f"{' ...' if len(problems) > 3 else ''}",
            file=sys.stderr,
        )
    if not splits.get("train"):
        raise DataError(f"{source}: no training {item}s found")
    return splits, problems


# -- the dataset -----------------------------------------------------------------------------


def _one_of(*options):
    def validator(instance, attribute, value):
        if value not in options:
            raise ConfigError(
                f"ImdbConfig.{attribute.name}={value!r}: must be one of {', '.join(options)}"
            )

    return validator


@attrs.frozen
class ImdbConfig:
    """``path=None`` uses the shared full set when it exists (else the error names ``path``)."""

    path: str | None = None
    final: bool = False
    val_size: int = attrs.field(default=5_000, validator=positive)
    #: Keep only this many training reviews (a random subset; None keeps all).
    train_size: int | None = attrs.field(default=None, validator=positive)
    vocab_size: int | None = attrs.field(default=None, validator=positive)
    max_len: int = attrs.field(default=512, validator=positive)
    pad_multiple: int = attrs.field(default=32, validator=positive)
    token_budget: int | None = attrs.field(default=None, validator=positive)
    seed: int = 0
    bad_rows: str = attrs.field(default="error", validator=_one_of("error", "skip"))
    text_column: str = "review"
    label_column: str = "sentiment"

    def source(self) -> Path:
        if self.path is not None:
            return Path(self.path).expanduser()
        default = data_root() / DEFAULT_ARCHIVE
        if default.exists():
            return default
        raise ConfigError(
            f"ImdbConfig.path is not set and {default} does not exist: pass the dataset option "
            f"path=/path/to/aclImdb (folder, .tar.gz or .csv) or set {DATA_ENV}"
        )


class ImdbDataset(ClassificationData):
    """IMDb reviews; splits ``train``, ``val`` and (for folder/archive sources) ``test``."""

    name: ClassVar[str] = "imdb"
    Config: ClassVar[type] = ImdbConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    classes = CLASSES
    #: ``seqfunc train imdb``: the 300-d mean-pool baseline (~0.89 validation in 5 epochs).
    train_defaults: ClassVar[dict] = {
        "model": "baseline",
        "epochs": 5,
        "batch_size": 128,
        "optimizer": "adam",
        "lr": 2e-3,
        "schedule": "warmup_cosine",
        "warmup_steps": 50,
        "clip_norm": 1.0,
        "eval_batch_size": 256,
        "examples": 3,
        "dataset_options": {
            "max_len": 2560,
            "pad_multiple": 64,
            "token_budget": 65536,
            "vocab_size": 25_000,
        },
        "model_options": {"pool": "mean", "d_model": 300, "embed_std": 0.05},
    }

    def __init__(self, config: ImdbConfig | None = None):
        self.config = c = config or ImdbConfig()
        source = c.source()
        raw, self.skipped = check_records(
            read_source(source, text_column=c.text_column, label_column=c.label_column),
            bad_rows=c.bad_rows,
            source=source,
        )
        train, test = raw["train"], raw.get("test")
        if c.final:
            if test is None:
                raise ConfigError(
                    f"ImdbConfig.final=True needs a test split, and {source} has none"
                )
            val = test
        else:
            if c.val_size >= len(train):
                raise ConfigError(
                    f"ImdbConfig.val_size={c.val_size}: must be < the {len(train)} training reviews"
                )
            held = set(Random(c.seed).sample(range(len(train)), k=c.val_size))
            val = [ex for i, ex in enumerate(train) if i in held]
            train = [ex for i, ex in enumerate(train) if i not in held]
        if c.train_size is not None and c.train_size < len(train):
            keep = sorted(Random(f"{c.seed}:train").sample(range(len(train)), k=c.train_size))
            train = [train[i] for i in keep]
        self.vocab = frequency_vocab((tokens for tokens, _ in train), c.vocab_size)
        self.splits_data = {"train": self._ids(train), "val": self._ids(val)}
        if test is not None:
            self.splits_data["test"] = self._ids(test)
        self._finish()

    def _ids(self, examples: list[tuple[list[str], int]]) -> tuple[list[list[int]], list[int]]:
        index, unk = self.vocab.token_to_idx, self.vocab[self.vocab.unk]
        ids = [[index.get(t, unk) for t in tokens] for tokens, _ in examples]
        return ids, [label for _, label in examples]
