"""The user-error types every layer raises.

A :class:`SeqfuncError` means "the input is wrong", not "seqfunc is broken": the command line
prints its message as one line (``seqfunc train: error: ...``) with no traceback and exits with
:attr:`SeqfuncError.exit_code`. Messages name what is wrong and where (file and line, field,
argument) and, where there is one, the fix.
"""

from __future__ import annotations


class SeqfuncError(Exception):
    """Base of every error seqfunc reports to a user as one line."""

    #: The command line's exit code for this error.
    exit_code = 2


class ConfigError(SeqfuncError, ValueError):
    """A config field has a value it cannot take. The message names the field."""


class UsageError(SeqfuncError):
    """A command-line argument that cannot be used; the message names the argument."""


class RegistryError(SeqfuncError, LookupError):
    """An unknown, ambiguous or broken registry entry; the message says which and why."""


class CheckpointError(SeqfuncError, RuntimeError):
    """A run folder or checkpoint that cannot be read or written; the message names the file."""


class CheckpointMismatch(CheckpointError):
    """A whole checkpoint that does not fit what the run now builds (a parameter's shape, the
    config it was written with): not damage, so it is left as it is; the message names what
    differs and how to go on."""


class RunLocked(SeqfuncError):
    """Another process is writing the run (or sweep) folder; the message names it (pid, host,
    start time)."""


class DataError(ConfigError):
    """A data file holds something it should not; the message names the file and line."""


class RunInterrupted(SeqfuncError):
    """A run stopped by SIGINT or SIGTERM after writing its checkpoint; the message says how to
    resume. Exits ``128 + signal`` (130 for SIGINT, 143 for SIGTERM), as shells do."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class NonFiniteError(SeqfuncError):
    """Too many non-finite updates in a row; the message names the step and the last good
    checkpoint, which stays on disk."""

    exit_code = 1
