"""Ctrl-C while a command starts: exit 130 and no traceback.

While the command starts, the interpreter is mostly inside imports (torch's take seconds),
and a ``KeyboardInterrupt`` raised there can do harm: a library's broad ``except`` may
swallow it and leave a module half-imported (the command would go on, and fail or train),
and raised inside a callback from C++ it aborts the process. So the command's first SIGINT
handler (:func:`guard_start_up`) only remembers the signal until the imports are done;
:func:`check` then raises it, and from there on the handler raises at once, as Python's does
(still remembering it: :class:`seqfunc.runs.signals.StopSignals` stops a run before its first
step on one that was swallowed).

No imports beyond the standard library: this runs before torch is loaded.
"""

from __future__ import annotations

import signal
import threading

_pending: int | None = None
_raise_now = False


def _interrupt(signum, frame):
    global _pending
    _pending = signum
    if _raise_now:
        raise KeyboardInterrupt


def guard_start_up() -> None:
    """Install the remembering SIGINT handler, in its quiet mode (main thread only, where
    handlers can be set; a handler someone else installed is left alone)."""
    global _raise_now
    if threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGINT
    ) in (signal.default_int_handler, _interrupt):
        _raise_now = False
        signal.signal(signal.SIGINT, _interrupt)


def check() -> None:
    """The imports are done: raise ``KeyboardInterrupt`` for a SIGINT that came during them,
    and raise at once for any later one."""
    global _raise_now
    _raise_now = True
    if _pending is not None:
        raise KeyboardInterrupt


def take_pending() -> int | None:
    """The SIGINT that came and was not acted on, if any (then cleared)."""
    global _pending
    pending, _pending = _pending, None
    return pending
