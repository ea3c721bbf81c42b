"""Ctrl-C while a command starts: exit 130 and no traceback, even when a library swallowed it.

SIGINT raises ``KeyboardInterrupt`` wherever the interpreter is, and while the command starts
that is usually inside an import (torch's take seconds), where a library's broad ``except``
can swallow it and leave a module half-imported: going on would fail later, or train. The
handler the command installs first (:func:`guard_start_up`) raises it as Python's does and
also remembers it; :func:`check` (after the command's imports) and
:class:`seqfunc.runs.signals.StopSignals` (before a run's first step) stop on a remembered one.

No imports beyond the standard library: this runs before torch is loaded.
"""

from __future__ import annotations

import signal
import threading

_pending: int | None = None


def _interrupt(signum, frame):
    global _pending
    _pending = signum
    raise KeyboardInterrupt


def guard_start_up() -> None:
    """Install the remembering SIGINT handler (main thread only, where handlers can be set;
    a handler someone else installed is left alone)."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _interrupt)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT came and was swallowed."""
    if _pending is not None:
        raise KeyboardInterrupt


def take_pending() -> int | None:
    """The SIGINT that came and was not acted on, if any (then cleared)."""
    global _pending
    pending, _pending = _pending, None
    return pending
