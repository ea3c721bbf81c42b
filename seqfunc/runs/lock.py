"""One writer per run folder: an exclusive OS file lock on ``FOLDER/.lock``.

The training process (rank 0 of a data-parallel group) takes the lock before it writes
anything into the folder and holds it until it ends. The lock is the operating system's
(``flock``), so it goes with the process: a run killed with SIGKILL leaves no stale lock, and
the next ``--resume`` takes it at once. The file holds the holder's pid, host and start time,
which a refused second writer names. Readers (``predict``, ``generate``) never take it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from seqfunc.errors import RunLocked
from seqfunc.runs.files import LOCK

LOCK_FILE = LOCK


class FolderLock:
    """The held lock of one folder; :meth:`release` (or the process's end) gives it back.

    ``FolderLock.acquire(folder)`` creates the folder if needed and raises
    :class:`~seqfunc.errors.RunLocked` naming the holder when another process has it."""

    def __init__(self, folder: Path, fd: int, created: list[Path]):
        self.folder, self._fd, self._created = folder, fd, created

    @classmethod
    def acquire(cls, folder: str | os.PathLike, *, what: str = "run") -> FolderLock:
        folder = Path(folder)
        created = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunLocked(
                f"{folder}: cannot create the {what} folder ({exc.strerror or exc})"
            ) from None
        path = folder / LOCK_FILE
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise RunLocked(
                    f"{path}: cannot open the lock file ({exc.strerror or exc})"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise RunLocked(f"{path}: cannot lock ({exc.strerror or exc})") from None
                raise RunLocked(_held_message(folder, path, what)) from None
            # The file may have been removed by a holder that released it between our open
            # and our flock (see release): then the lock is on a dead inode; open it again.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        _write_holder(fd)
        return cls(folder, fd, created)

    def release(self, *, remove_created: bool = False) -> None:
        """Give the lock back. ``remove_created``: also remove the lock file and the folders
        :meth:`acquire` created, if nothing else was written into them (a run that stopped
        at a config error leaves no folder behind)."""
        if self._fd is None:
            return
        try:
            if remove_created and self._created:
                (self.folder / LOCK_FILE).unlink(missing_ok=True)
                for folder in reversed(self._created):
                    try:
                        folder.rmdir()
                    except OSError:  # not empty (or gone): leave it
                        break
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    data = (json.dumps(holder) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _held_message(folder: Path, path: Path, what: str) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        who = f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):  # the holder has not written it yet
        who = "a process that is starting"
    return (
        f"{folder}: another process is writing this {what} ({who}); wait for it to end "
        f"or stop it, then resume, or choose another --out"
    )
