"""Locating and reading the text files behind datasets, with errors that say what to fix.

Every file a dataset reads goes through :func:`read_utf8` or :func:`read_bytes`: a path that
is not a regular file (``/dev/zero``, a FIFO, a socket) is refused before it is opened, as
reading it would never end or block; a UTF-8 byte-order mark (Excel's "CSV UTF-8") is dropped.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

from seqfunc.config import ConfigError

#: The environment variable naming the folder of the public datasets that a dataset reads when
#: its ``path`` option is not given (``$SEQFUNC_DATA/tinyshakespeare/input.txt``, ...).
DATA_ENV = "SEQFUNC_DATA"

#: A development fallback for ``$SEQFUNC_DATA``: the ``shared/data`` folder beside a source
#: checkout (``<checkout>/../shared/data``), used only if it exists.
CHECKOUT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def data_root() -> Path:
    """The folder the datasets' default files are read from: ``$SEQFUNC_DATA`` when set, else
    the development fallback :data:`CHECKOUT_DATA` (which may not exist)."""
    configured = os.environ.get(DATA_ENV)
    return Path(configured).expanduser() if configured else CHECKOUT_DATA


#: The UTF-8 byte-order mark, as decoded text.
BOM = "\ufeff"


def resolve_path(path: str | None, shared_relative: str, *, option: str, dataset: str) -> Path:
    """The file or folder a dataset reads: ``path`` when given (it must exist), else the copy
    ``data_root() / shared_relative`` when that exists, else a :class:`ConfigError` that names
    the option (and the environment variable) to set."""
    if path:
        resolved = Path(path).expanduser()
        if not resolved.exists():
            raise ConfigError(f"{dataset}: {option}={path!r}: no such file or folder")
        require_regular(resolved, f"{dataset}: {option}={path!r}")
        return resolved
    shared = data_root() / shared_relative
    if shared.exists():
        return shared
    raise ConfigError(
        f"{dataset}: no data file given and none at {shared}; set the dataset option {option} "
        f"(e.g. seqfunc train {dataset} -d {option}=/path/to/{Path(shared_relative).name}) or "
        f"{DATA_ENV} to the folder that holds {shared_relative}"
    )


def special_kind(path: str | Path) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a folder ("a
    character device", "a FIFO"...), else None. Only ``stat``: opening a FIFO would block."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None  # missing or unreadable: the caller's open names that
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def require_regular(path: str | Path, where: str) -> None:
    """Raise a :class:`ConfigError` (``where: ...``) when ``path`` is a device, a FIFO or
    another special file (a folder or a missing path is the caller's to judge)."""
    kind = special_kind(path)
    if kind is not None:
        raise ConfigError(f"{where}: {kind}, not a regular file; give a data file")


def read_utf8(path: str | Path) -> str:
    """The whole file as text, without a leading byte-order mark. Bytes that are not UTF-8
    raise a :class:`ConfigError` naming the file, the byte offset and the line."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte {exc.start} (line {line}) is 0x{data[exc.start]:02x} "
            f"({exc.reason})"
        ) from None


def read_bytes(path: str | Path) -> bytes:
    """The whole file's bytes; a device or a FIFO is refused (:func:`require_regular`)."""
    require_regular(path, str(path))
    return Path(path).read_bytes()


def allow_csv_field(size: int) -> None:
    """Let the csv module read fields of up to ``size`` characters (its default limit is
    131,072): a cell can be no longer than the file that holds it."""
    if size > csv.field_size_limit():
        csv.field_size_limit(size)
