"""Locating and reading the text files behind datasets, with errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

from seqfunc.config import ConfigError

#: Where the project's shared copies live when this checkout sits next to them
#: (``<repo>/../shared/data``). Used only if it exists; never a silent relative default.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def resolve_path(path: str | None, shared_relative: str, *, option: str, dataset: str) -> Path:
    """The file or folder a dataset reads: ``path`` when given (it must exist), else the shared
    copy ``SHARED_DATA / shared_relative`` when that exists, else a :class:`ConfigError` that
    names the option to set."""
    if path:
        resolved = Path(path).expanduser()
        if not resolved.exists():
            raise ConfigError(f"{dataset}: {option}={path!r}: no such file or folder")
        return resolved
    shared = SHARED_DATA / shared_relative
    if shared.exists():
        return shared
    raise ConfigError(
        f"{dataset}: no data file given and no shared copy at {shared}; set the dataset option "
        f"{option} (e.g. seqfunc train {dataset} -d {option}=/path/to/{Path(shared_relative).name})"
    )


def read_utf8(path: str | Path) -> str:
    """The whole file as text. Bytes that are not UTF-8 raise a :class:`ConfigError` naming
    the file, the byte offset and the line."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte {exc.start} (line {line}) is 0x{data[exc.start]:02x} "
            f"({exc.reason})"
        ) from None


def read_bytes(path: str | Path) -> bytes:
    return Path(path).read_bytes()
