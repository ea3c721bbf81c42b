"""Reading a prepared corpus: a folder of token shards and its ``manifest.json``.

``seqfunc prepare`` (:mod:`seqfunc.data.prepare`) writes a folder like::

    corpus/
        train-00000.bin  train-00001.bin ...   token ids, one flat array per file (``dtype``)
        val-00000.bin ...
        manifest.json                           written last: the folder is complete

The manifest holds the unit and the vocabulary (or the tokenizer), the dtype, each shard's
token count and sha256, and the split rule. A folder without it is an interrupted prepare and
is never read as a corpus.

A split is read as one ``(N,)`` sequence, :class:`ShardedTokens`: windows are gathered from a
memory map opened for the read and dropped after it, so only the bytes of the windows are
read and the process's memory does not grow with the corpus or with the steps.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import torch

from seqfunc.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "seqfunc-prepared-corpus"
VERSION = 1
SPLITS = ("train", "val")
#: What a token is, in the text dataset and in a prepared folder.
UNITS = ("char", "byte", "subword")
#: Present while ``seqfunc prepare`` writes the folder; removed once the manifest is written.
INCOMPLETE_MARKER = ".prepare-incomplete"
#: Names ``seqfunc prepare`` writes (shards, their temporary names, the marker).
OWN_FILE = re.compile(
    r"^((train|val)-\d{5}\.bin(\.tmp)?|\.prepare-incomplete|\.manifest\.json\..*\.tmp)$"
)
_HASH_BLOCK = 1 << 20


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.bin"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds ``vocab_size`` ids."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise DataError(f"a vocabulary of {vocab_size} entries does not fit 32-bit token ids")


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MB blocks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def is_prepared(path: Path) -> bool:
    """Whether ``path`` is a folder ``seqfunc prepare`` finished (it holds a manifest)."""
    return path.is_dir() and (path / MANIFEST).is_file()


def check_not_incomplete(path: Path) -> None:
    """A folder left by an interrupted ``seqfunc prepare`` raises a :class:`DataError` (its
    shards are not text, and they may be half-written)."""
    if (
        path.is_dir()
        and not (path / MANIFEST).exists()
        and (
            (path / INCOMPLETE_MARKER).exists()
            or any(OWN_FILE.match(p.name) for p in path.iterdir())
        )
    ):
        raise DataError(
            f"{path}: an unfinished prepared corpus (no {MANIFEST}: its seqfunc prepare "
            "was interrupted or failed); run seqfunc prepare again with this --out"
        )


def describe_vocabulary(vocabulary: dict) -> str:
    """``"unit=char, 65 tokens, digest 3f2a9c1b"``: enough to tell two vocabularies apart."""
    unit = vocabulary.get("unit")
    if unit == "char":
        size = f", {len(vocabulary['vocab']['tokens'])} characters"
    elif unit == "subword":
        size = f", a tokenizer of {len(vocabulary['tokenizer']['tokenizer']['model']['vocab'])} entries"
    else:
        size = ""
    digest = hashlib.sha256(json.dumps(vocabulary, sort_keys=True).encode()).hexdigest()[:8]
    return f"unit={unit}{size}, digest {digest}"


class ShardedTokens:
    """One split of a prepared corpus as a ``(N,)`` token sequence spread over shard files.

    Supports what the language-model datasets ask of an id tensor: :meth:`numel`,
    :meth:`windows` (random slices) and ``tokens[a:b]`` (a prompt)."""

    def __init__(self, paths: list[Path], counts: list[int], dtype: np.dtype):
        self.paths, self.dtype = list(paths), np.dtype(dtype)
        counts = np.asarray(counts, dtype=np.int64)
        self.ends = np.cumsum(counts)  # (S,): one past each shard's last global offset
        self.begins = self.ends - counts  # (S,)

    def numel(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def _map(self, shard: int) -> np.memmap:
        return np.memmap(self.paths[shard], dtype=self.dtype, mode="r")

    def windows(self, starts: torch.Tensor, length: int) -> torch.Tensor:
        """``starts (b,)`` global offsets -> ``(b, length)`` int64: ``tokens[s : s + length]``."""
        starts = starts.cpu().numpy().astype(np.int64)
        out = np.empty((len(starts), length), dtype=np.int64)
        first = np.searchsorted(
            self.ends, starts, side="right"
        )  # (b,) shard of each window's start
        last = np.searchsorted(self.ends, starts + length - 1, side="right")  # (b,) of its end
        steps = np.arange(length)
        for shard in np.unique(first):
            rows = np.nonzero((first == shard) & (last == shard))[0]
            if len(rows):
                tokens = self._map(shard)  # opened per read: memory does not grow with the steps
                out[rows] = tokens[(starts[rows] - self.begins[shard])[:, None] + steps]
                del tokens
        for row in np.nonzero(first != last)[0]:  # windows across shard boundaries (rare)
            out[row] = self._read(int(starts[row]), length)
        return torch.from_numpy(out)

    def _read(self, start: int, length: int) -> np.ndarray:
        """``(length,)`` tokens from global offset ``start``, across shards."""
        parts, shard = [], int(np.searchsorted(self.ends, start, side="right"))
        while length > 0:
            tokens = self._map(shard)
            local = start - int(self.begins[shard])
            part = np.array(tokens[local : local + length], dtype=np.int64)
            del tokens
            parts.append(part)
            start, length, shard = start + len(part), length - len(part), shard + 1
        return np.concatenate(parts)

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("ShardedTokens supports tokens[a:b] only")
        start, stop, _ = index.indices(self.numel())
        return torch.from_numpy(self._read(start, max(stop - start, 0)))

    def __len__(self) -> int:
        return self.numel()


class PreparedCorpus:
    """A finished ``seqfunc prepare`` folder: its manifest, checked against its shards."""

    def __init__(self, folder: str | Path, *, verify: bool = True):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.dtype = np.dtype(self.manifest["dtype"])
        if verify:
            self.verify()

    @property
    def vocabulary(self) -> dict:
        """What the ``text`` dataset saves in a run folder (``text_vocab.json``)."""
        return self.manifest["vocabulary"]

    @property
    def unit(self) -> str:
        return self.vocabulary["unit"]

    def shards(self, split: str) -> list[dict]:
        return self.manifest["shards"][split]

    def verify(self) -> None:
        """Every shard listed is there with its size and sha256, else a :class:`DataError`
        naming the shard."""
        for split in SPLITS:
            for shard in self.shards(split):
                path = self.folder / shard["file"]
                if not path.is_file():
                    raise DataError(
                        f"{path}: missing (listed in {self.folder / MANIFEST}); "
                        "run seqfunc prepare again"
                    )
                size, want = path.stat().st_size, shard["tokens"] * self.dtype.itemsize
                if size != want:
                    raise DataError(
                        f"{path}: {size} bytes, {MANIFEST} says {want} "
                        f"({shard['tokens']} {self.dtype.name} tokens): the shard does "
                        "not match its manifest; run seqfunc prepare again"
                    )
                if file_sha256(path) != shard["sha256"]:
                    raise DataError(
                        f"{path}: sha256 differs from {MANIFEST}'s: the shard does not "
                        "match its manifest (damaged or changed); run seqfunc prepare again"
                    )

    def tokens(self, split: str) -> ShardedTokens:
        shards = self.shards(split)
        return ShardedTokens(
            [self.folder / s["file"] for s in shards], [s["tokens"] for s in shards], self.dtype
        )


def read_manifest(folder: Path) -> dict:
    """The manifest of a prepared folder, its fields checked (a :class:`DataError` names what
    is wrong)."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f'{path}: not a seqfunc prepare manifest (no "format": "{FORMAT}")')
    if manifest.get("version") != VERSION:
        raise DataError(
            f"{path}: manifest version {manifest.get('version')!r}; this seqfunc "
            f"reads version {VERSION}: run seqfunc prepare again"
        )
    for key in ("vocabulary", "dtype", "shards"):
        if key not in manifest:
            raise DataError(f"{path}: the manifest has no {key!r}")
    for split in SPLITS:
        if split not in manifest["shards"]:
            raise DataError(f"{path}: the manifest lists no {split} shards")
    return manifest
