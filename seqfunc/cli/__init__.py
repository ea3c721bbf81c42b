"""The ``seqfunc`` command. Each subcommand lives in its own module of this package and
provides ``add_parser(subparsers)``; the parser it adds sets ``func(args) -> exit code``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from seqfunc import interrupts
from seqfunc.errors import RunInterrupted, SeqfuncError, UsageError

#: Subcommand modules, in the order ``seqfunc --help`` lists them.
COMMANDS = [
    "train",
    "prepare",
    "predict",
    "translate",
    "experiment",
    "list",
    "check",
    "attention",
    "generate",
    "sweep",
    "import_",
    "export",
]


__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

#: Exceptions besides SeqfuncError that mean "the input is wrong", not "seqfunc is broken":
#: a path the user gave that the system refuses (missing, too long, a folder, not readable)
#: and files that are not UTF-8.
USER_ERRORS = (OSError, UnicodeDecodeError)


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as one line (the usage is one ``--help`` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from seqfunc import __version__

    parser = Parser(
        prog="seqfunc", description="Sequence models as pure functions, trained with torch.func."
    )
    parser.add_argument("--version", action="version", version=f"seqfunc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"seqfunc.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    interrupts.guard_start_up()
    try:
        code = _main(argv)
    except KeyboardInterrupt:  # Ctrl-C at start-up (imports, parsing): nothing to save
        print("seqfunc: interrupted", file=sys.stderr)
        code = 130
    if interrupts.take_pending() is not None and argv is None:
        # CPython ends an interpreter by SIGINT when a KeyboardInterrupt went through code a C
        # extension ran with PyRun_* (an import's), even if it was caught later: as the
        # command, leave with the exit code instead (every file is closed by now).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    interrupts.check()  # the parser imported every command, and torch
    args, extra = parser.parse_known_args(argv)
    # A subcommand with `intermixed=FIELD` takes positionals after its options too
    # (`seqfunc predict RUN --json "some text"`); anything else left over is an error.
    field = getattr(args, "intermixed", None)
    if extra and field and not any(a.startswith("-") and a != "-" for a in extra):
        setattr(args, field, [*getattr(args, field), *extra])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = [*(sys.argv[1:] if argv is None else argv)]  # for launchers that re-run it
    # In a data-parallel group every rank meets the same user error: rank 0 reports it.
    speaks = os.environ.get("RANK", "0") == "0"
    try:
        return int(args.func(args) or 0)
    except RunInterrupted as exc:  # not an error: the run is saved and says how to resume
        if speaks:
            print(f"seqfunc {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except SeqfuncError as exc:
        if speaks:
            print(f"seqfunc {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `seqfunc list | head`: the reader has all it wants
        _silence_stdout()
        return 0
    except USER_ERRORS as exc:
        print(f"seqfunc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seqfunc {args.command}: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of the closed pipe is
    silent too (the recipe of Python's signal documentation)."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
