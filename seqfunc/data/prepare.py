"""``seqfunc prepare text``: a text corpus of any size to token shards, read in bounded memory.

The input (a file, a folder of files or a glob, in path order, files joined by a newline) is
read in line-aligned chunks of a few MB and never whole:

* ``byte``: the UTF-8 bytes are the ids (uint8 shards);
* ``char``: a first pass collects the set of characters (checking that the text is UTF-8),
  the second writes their ids;
* ``subword``: a BPE tokenizer (:class:`seqfunc.data.text_tokenizers.BpeTokenizer`) is
  trained on the first ``sample_mb`` MB of the training split, then each chunk's lines are
  encoded with the ``tokenizers`` batch encoder (parallel over the cores); every line ends in
  ``<eos>``, as the ``text`` dataset does.

Split rule: the validation split starts at the first line that begins after
``1 - val_fraction`` of the input's bytes. Shards hold ``shard_tokens`` ids each; each is
written under a temporary name and renamed when whole, and ``manifest.json`` is written last
(:mod:`seqfunc.data.prepared`). A failure removes what was written; a folder left by a killed
prepare is cleared by the next ``seqfunc prepare`` into it.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np

from seqfunc.config import one_of, positive, probability
from seqfunc.data import prepared
from seqfunc.data.prepared import (
    INCOMPLETE_MARKER,
    MANIFEST,
    OWN_FILE,
    UNITS,
    shard_name,
    token_dtype,
)
from seqfunc.errors import ConfigError, DataError, SeqfuncError
from seqfunc.serialization import write_json

#: Bytes read at a time (a chunk ends at a line end, so a chunk holds whole lines).
CHUNK_BYTES = 4 << 20
#: A "line" longer than this many chunks is cut at a space or a character boundary instead.
MAX_LINE_CHUNKS = 4


@attrs.frozen
class PrepareConfig:
    #: a UTF-8 text file, a folder of them (read recursively in path order) or a glob; required
    path: str | None = None
    #: what a token is: char, byte or subword (as the text dataset's unit)
    unit: str = attrs.field(default="char", validator=one_of(UNITS))
    #: subword: entries of the trained tokenizer's vocabulary
    vocab_size: int = attrs.field(default=2000, validator=positive)
    #: the last fraction of the input's bytes held out for validation (cut at a line start)
    val_fraction: float = attrs.field(default=0.1, validator=[positive, probability])
    #: subword: MB of the training split's first lines the tokenizer is trained on
    sample_mb: float = attrs.field(default=8.0, validator=positive)
    #: tokens per shard file
    shard_tokens: int = attrs.field(default=1 << 27, validator=positive)


# -- reading the input ------------------------------------------------------------------------


def corpus_files(path: str | None) -> list[Path]:
    """The files of a file, a folder (recursively, hidden names skipped) or a glob, sorted by
    path, empty ones left out; a :class:`ConfigError` when there are none."""
    if not path:
        raise ConfigError(
            "prepare: no text given; set the option path "
            "(seqfunc prepare text -d path=FILE_OR_FOLDER_OR_GLOB --out DIR)"
        )
    given = Path(path).expanduser()
    if given.is_file():
        files = [given]
    elif given.is_dir():
        prepared.check_not_incomplete(given)
        if prepared.is_prepared(given):
            raise ConfigError(
                f"prepare: path={path}: a prepared corpus already (it holds {MANIFEST})"
            )
        files = sorted(
            p
            for p in given.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(given).parts)
        )
    elif any(c in path for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(given), recursive=True) if Path(p).is_file())
    else:
        raise ConfigError(f"prepare: path={path!r}: no such file or folder")
    if not files:
        raise ConfigError(f"prepare: path={path!r}: no files")
    nonempty = [f for f in files if f.stat().st_size > 0]
    if not nonempty:
        raise DataError(
            f"{files[0]}:1: empty text file (nothing to train on)"
            + (" (and so are the other files)" if len(files) > 1 else "")
        )
    return nonempty


def _cut(buffer: bytes, limit: int) -> int:
    """Where to end a chunk of ``buffer``: after its last newline; a line longer than
    ``limit`` bytes at its last space, else at a UTF-8 character boundary."""
    end = buffer.rfind(b"\n") + 1
    if end or len(buffer) < limit:
        return end
    end = buffer.rfind(b" ") + 1
    if end:
        return end
    end = len(buffer)
    while end > len(buffer) - 4 and end > 0 and (buffer[end - 1] & 0xC0) == 0x80:
        end -= 1  # back over continuation bytes to the lead byte,
    if end > 0 and buffer[end - 1] >= 0xC0:
        end -= 1  # and before it: the character starts the next chunk
    return end or len(buffer)


def chunks(
    files: list[Path], chunk_bytes: int | None = None
) -> Iterator[tuple[bytes, Path | None, int]]:
    """``(data, file, offset)``: the input as line-aligned byte chunks of about
    ``chunk_bytes`` (default :data:`CHUNK_BYTES`; ``file`` and the byte ``offset`` of ``data``
    in it; ``None`` for the newline joining two files)."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    for index, path in enumerate(files):
        if index:
            yield b"\n", None, 0
        with open(path, "rb") as f:
            carry, offset = b"", 0
            while block := f.read(chunk_bytes):
                carry += block
                end = _cut(carry, MAX_LINE_CHUNKS * chunk_bytes)
                if end:
                    yield carry[:end], path, offset
                    carry, offset = carry[end:], offset + end
            if carry:
                yield carry, path, offset


def input_bytes(files: list[Path]) -> int:
    """The size of the joined input: the files and a newline between each two."""
    return sum(f.stat().st_size for f in files) + len(files) - 1


def split_chunks(
    files: list[Path], val_fraction: float, chunk_bytes: int | None = None
) -> Iterator[tuple[str, bytes, Path | None, int]]:
    """``(split, data, file, offset)``: :func:`chunks` with each chunk's split; the val
    split starts at the first line that begins at or after ``1 - val_fraction`` of the bytes."""
    target = int(input_bytes(files) * (1 - val_fraction))
    position, split = 0, "train"
    for data, path, offset in chunks(files, chunk_bytes):
        if split == "train" and position + len(data) > target:
            line_start = 0 if position >= target else data.find(b"\n", target - position - 1) + 1
            if position >= target or line_start:
                if line_start:
                    yield "train", data[:line_start], path, offset
                    data, offset = data[line_start:], offset + line_start
                split = "val"
        position += len(data) if split == "train" else 0
        if data:
            yield split, data, path, offset


def decode_utf8(data: bytes, path: Path | None, offset: int) -> str:
    """``data`` as text; invalid UTF-8 raises a :class:`DataError` naming the file and the
    byte offset in it."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = offset + exc.start
        raise DataError(
            f"{path}: not UTF-8 text: byte {at} is 0x{data[exc.start]:02x} "
            f"({exc.reason}); unit=byte takes any bytes"
        ) from None


def code_points(data: bytes, path: Path | None, offset: int) -> np.ndarray:
    """``(n,)`` uint32 code points of a UTF-8 chunk (ASCII without a decode)."""
    if data.isascii():
        return np.frombuffer(data, dtype=np.uint8)
    return np.frombuffer(decode_utf8(data, path, offset).encode("utf-32-le"), dtype=np.uint32)


# -- tokenizing -------------------------------------------------------------------------------


class ByteUnits:
    """Ids are the bytes."""

    dtype = np.dtype(np.uint8)

    def vocabulary(self) -> dict:
        return {"unit": "byte"}

    def encode(self, data: bytes, path, offset) -> np.ndarray:
        return np.frombuffer(data, dtype=np.uint8)


class CharUnits:
    """Ids are positions in the sorted set of the input's characters (one pass to find it)."""

    def __init__(self, stream, progress):
        seen = np.zeros(0x110000, dtype=bool)
        seen_ascii = b""
        for _, data, path, offset in stream:
            if data.isascii():  # only the bytes not seen yet survive the deletion (fast)
                new = data.translate(None, seen_ascii)
                if new:
                    found = np.flatnonzero(np.bincount(np.frombuffer(new, dtype=np.uint8)))
                    seen[found] = True
                    seen_ascii += bytes(found.tolist())
            else:
                seen[np.flatnonzero(np.bincount(code_points(data, path, offset)))] = True
            progress(len(data))
        self.codes = np.flatnonzero(seen)  # (V,) code points, ascending (as sorted(set(text)))
        self.dtype = token_dtype(len(self.codes))
        self.lookup = np.zeros(int(self.codes[-1]) + 1 if len(self.codes) else 1, dtype=self.dtype)
        self.lookup[self.codes] = np.arange(len(self.codes), dtype=self.dtype)
        # ASCII chunks into uint8 ids: one bytes.translate (several times faster than indexing)
        ascii_ids = self.lookup[:128].tolist()
        self.ascii_table = (
            bytes(ascii_ids + [0] * (256 - len(ascii_ids))) if self.dtype == np.uint8 else None
        )

    def vocabulary(self) -> dict:
        tokens = [chr(c) for c in self.codes]
        return {"unit": "char", "vocab": {"tokens": tokens, "unk": None}}

    def encode(self, data: bytes, path, offset) -> np.ndarray:
        if self.ascii_table is not None and data.isascii():
            return np.frombuffer(data.translate(self.ascii_table), dtype=np.uint8)
        return self.lookup[code_points(data, path, offset)]


class SubwordUnits:
    """A BPE tokenizer trained on a sample of the training split; each line ends in ``<eos>``."""

    def __init__(self, stream, sample_bytes: int, vocab_size: int):
        from seqfunc.data.text_tokenizers import EOS, TOKENIZERS

        lines, taken = [], 0
        for split, data, path, offset in stream:
            if split != "train" or taken >= sample_bytes:
                break
            lines.extend(
                line for line in decode_utf8(data, path, offset).splitlines() if line.strip()
            )
            taken += len(data)
        if not lines:
            raise DataError("prepare: the training split holds no text to train a tokenizer on")
        self.tokenizer = TOKENIZERS["bpe"].train(lines, vocab_size=vocab_size)
        self.eos = self.tokenizer.vocab[EOS]
        self.dtype = token_dtype(len(self.tokenizer.vocab))

    def vocabulary(self) -> dict:
        return {"unit": "subword", "tokenizer": self.tokenizer.to_json()}

    def encode(self, data: bytes, path, offset) -> np.ndarray:
        lines = decode_utf8(data, path, offset).splitlines()
        kept = [line for line in lines if line.strip()]
        tokenizer = self.tokenizer.tokenizer
        # the fast variant skips the offsets (same ids); parallel over the cores in Rust
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        encoded = iter(encode(kept, add_special_tokens=False))
        eos, pieces = [self.eos], []
        for line in lines:
            if line.strip():
                pieces.append(next(encoded).ids)
            pieces.append(eos)
        return np.fromiter(itertools.chain.from_iterable(pieces), dtype=self.dtype)


# -- writing ----------------------------------------------------------------------------------


def _write(file, data: memoryview) -> None:
    """One write of shard bytes (a seam for tests that fill the disk)."""
    file.write(data)


class ShardWriter:
    """Appends ids to ``{split}-NNNNN.bin`` shards of ``shard_tokens`` ids each; a shard is
    written as ``NAME.tmp``, synced and renamed when whole."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype, shard_tokens: int):
        self.folder, self.split, self.dtype, self.shard_tokens = folder, split, dtype, shard_tokens
        self.shards: list[dict] = []
        self._file = None

    def write(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=self.dtype)
        while len(ids):
            if self._file is None:
                self._open()
            part, ids = (
                ids[: self.shard_tokens - self._count],
                ids[self.shard_tokens - self._count :],
            )
            data = memoryview(part).cast("B")
            try:
                _write(self._file, data)
            except OSError as exc:
                exc.filename = exc.filename or str(self.folder / self._name)
                raise
            self._hash.update(data)
            self._count += len(part)
            if self._count == self.shard_tokens:
                self._close()

    def _open(self) -> None:
        self._name = shard_name(self.split, len(self.shards))
        self._file = open(self.folder / (self._name + ".tmp"), "wb")
        self._hash, self._count = hashlib.sha256(), 0

    def _close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self.folder / (self._name + ".tmp"), self.folder / self._name)
        self.shards.append(
            {"file": self._name, "tokens": self._count, "sha256": self._hash.hexdigest()}
        )

    def finish(self) -> list[dict]:
        if self._file is not None:
            self._close()
        return self.shards

    def abandon(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def clear_folder(out: Path) -> None:
    """Make ``out`` ready to write: create it, or clear what an interrupted prepare left
    there. A finished corpus or a folder of other files is refused (nothing is deleted)."""
    if (out / MANIFEST).exists():
        raise ConfigError(
            f"{out}: holds a prepared corpus already ({MANIFEST}); remove the "
            "folder or prepare into another --out"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file, not a folder")
    if out.is_dir():
        others = [p.name for p in out.iterdir() if not OWN_FILE.match(p.name)]
        if others:
            raise ConfigError(
                f"--out {out}: the folder holds other files ({', '.join(sorted(others)[:3])}); "
                "prepare into a new or empty folder"
            )
        for p in out.iterdir():
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _remove_written(out: Path) -> None:
    for p in out.iterdir():
        if OWN_FILE.match(p.name) and p.name != INCOMPLETE_MARKER:
            p.unlink(missing_ok=True)


def prepare(config: PrepareConfig, out: str | Path, *, progress: bool = True) -> dict:
    """Write the shards and the manifest of ``config``'s text into the folder ``out``;
    returns the manifest (plus ``seconds``, ``input_bytes``: figures of this prepare)."""
    from tqdm.auto import tqdm

    out = Path(out)
    files = corpus_files(config.path)
    clear_folder(out)
    (out / INCOMPLETE_MARKER).touch()
    total = input_bytes(files)
    start = time.perf_counter()
    passes = 2 if config.unit == "char" else 1
    writers: dict[str, ShardWriter] = {}
    with tqdm(
        total=total * passes,
        unit="B",
        unit_scale=True,
        disable=not progress,
        desc=f"prepare {config.unit}",
        dynamic_ncols=True,
    ) as bar:
        try:
            stream = lambda: split_chunks(files, config.val_fraction)  # noqa: E731
            if config.unit == "byte":
                units = ByteUnits()
            elif config.unit == "char":
                units = CharUnits(stream(), bar.update)
            else:
                units = SubwordUnits(stream(), int(config.sample_mb * 2**20), config.vocab_size)
            writers = {
                s: ShardWriter(out, s, units.dtype, config.shard_tokens) for s in prepared.SPLITS
            }
            nonblank = False
            for split, data, path, offset in stream():
                nonblank = nonblank or not data.isspace()
                writers[split].write(units.encode(data, path, offset))
                bar.update(len(data))
            shards = {s: w.finish() for s, w in writers.items()}
        except BaseException as exc:
            for writer in writers.values():
                writer.abandon()
            _remove_written(out)
            if isinstance(exc, OSError) and not isinstance(exc, SeqfuncError):
                name = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                hint = "; free some space and" if exc.errno == errno.ENOSPC else ";"
                raise SeqfuncError(
                    f"{out}: prepare failed{name} ({reason}){hint} run seqfunc prepare "
                    "again (the shards written so far are removed)"
                ) from None
            raise
    counts = {s: sum(x["tokens"] for x in shards[s]) for s in shards}
    _check_counts(files, config, counts, nonblank, out)
    manifest = {
        "format": prepared.FORMAT,
        "version": prepared.VERSION,
        "vocabulary": units.vocabulary(),
        "dtype": units.dtype.name,
        "vocab_size": config.vocab_size if config.unit == "subword" else None,
        "split": {
            "rule": "val starts at the first line beginning at or after "
            "(1 - val_fraction) of the input bytes",
            "val_fraction": config.val_fraction,
        },
        "sources": [{"file": str(f), "bytes": f.stat().st_size} for f in files],
        "input_bytes": total,
        "tokens": counts,
        "shards": shards,
    }
    write_json(out / MANIFEST, manifest)
    (out / INCOMPLETE_MARKER).unlink(missing_ok=True)
    return {**manifest, "seconds": time.perf_counter() - start}


def _check_counts(
    files: list[Path], config: PrepareConfig, counts: dict, nonblank: bool, out: Path
) -> None:
    """An empty, blank or one-line input stops here with a one-line error (nothing kept)."""
    problem = None
    if not nonblank:
        problem = f"{files[0]}:1: empty text file (only whitespace; nothing to train on)"
    elif counts["val"] < 2 or counts["train"] < 2:
        problem = (
            f"{files[0]}: too short to split: {counts['train']} training and {counts['val']} "
            f"validation {config.unit} tokens (the val split starts at the first line after "
            f"{1 - config.val_fraction:.0%} of the bytes); give more lines of text or raise "
            "-d val_fraction="
        )
    if problem:
        _remove_written(out)
        raise DataError(problem)
