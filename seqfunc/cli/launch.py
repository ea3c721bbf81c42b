"""``seqfunc train --nproc N``: the same command on N processes of this machine, started by
torch's own launcher (``torch.distributed.run``, what ``torchrun`` runs) in standalone mode.

A SIGINT or SIGTERM to this process is passed on to the ranks by torch's agent: they finish
their step, write a checkpoint and rank 0 prints how to resume; this process then exits
``128 + signal`` (130, 143) as one process would, without the agent's traceback. A rank that
stops on a user error (exit 2) has printed it once: the agent's own "failed" line is dropped.
"""

from __future__ import annotations

import argparse
import logging

#: Options of the launching command that the launched ones must not see.
LAUNCHER_OPTIONS = ("--nproc", "--max-restarts")


def worker_argv(argv: list[str]) -> list[str]:
    """``argv`` without the launcher's options (``--nproc 2`` or ``--nproc=2``)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token in LAUNCHER_OPTIONS:
            skip = True
        elif not token.startswith(tuple(f"{o}=" for o in LAUNCHER_OPTIONS)):
            out.append(token)
    return out


#: Exit codes of ranks that reported their own stop in one line (a user error).
REPORTED_EXIT_CODES = (2,)


class _ReportedFailures(logging.Filter):
    """Drops the agent's "failed (exitcode: 2) local_rank: ..." line: the rank printed why."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg.startswith("failed (exitcode: %s)")
            and record.args
            and record.args[0] in REPORTED_EXIT_CODES
        )


def launch(args: argparse.Namespace) -> int:
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from seqfunc.cli import UsageError
    from seqfunc.cli.train import run_config

    if args.nproc < 1:
        raise UsageError(f"--nproc {args.nproc}: must be >= 1")
    argv = worker_argv(args.argv)
    if args.resume is None and args.out is None:  # one folder name for every rank
        argv += ["--out", str(run_config(args)[1])]
    agent_log = logging.getLogger("torch.distributed.elastic.multiprocessing.api")
    quiet = _ReportedFailures()
    agent_log.addFilter(quiet)
    try:
        torchrun.main(
            [
                "--standalone",
                "--nproc-per-node",
                str(args.nproc),
                "--max-restarts",
                str(args.max_restarts),
                "-m",
                "seqfunc",
                *argv,
            ]
        )
    except ChildFailedError as exc:
        codes = [f.exitcode for f in exc.failures.values()]
        return next((c for c in codes if c and c > 0), 1)
    except SignalException as exc:  # the agent has stopped the ranks (they checkpointed)
        return 128 + int(exc.sigval)
    finally:
        agent_log.removeFilter(quiet)
    return 0
