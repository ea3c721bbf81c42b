"""SIGINT and SIGTERM as requests to stop: the loop finishes its step, writes a checkpoint and
exits. A second SIGINT stops at once (``KeyboardInterrupt``); checkpoints are written
atomically, so the previous one is whole either way."""

from __future__ import annotations

import signal
import threading

from seqfunc import interrupts
from seqfunc.errors import RunInterrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A context manager: inside it, the first SIGINT/SIGTERM only sets :attr:`received`.

    Outside the main thread (where Python cannot install handlers) it does nothing."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        self.received = signum

    def __enter__(self) -> StopSignals:
        if interrupts.take_pending() is not None:  # a Ctrl-C at start-up that was swallowed
            raise RunInterrupted(
                "interrupted (SIGINT) while starting, before the first step", signal.SIGINT
            )
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
