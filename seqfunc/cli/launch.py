"""``seqfunc train --nproc N``: the same command on N processes of this machine, started by
torch's own launcher (``torch.distributed.run``, what ``torchrun`` runs) in standalone mode."""

from __future__ import annotations

import argparse

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


def launch(args: argparse.Namespace) -> int:
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from seqfunc.cli import UsageError
    from seqfunc.cli.train import run_config

    if args.nproc < 1:
        raise UsageError(f"--nproc {args.nproc}: must be >= 1")
    argv = worker_argv(args.argv)
    if args.resume is None and args.out is None:  # one folder name for every rank
        argv += ["--out", str(run_config(args)[1])]
    try:
        torchrun.main(["--standalone", "--nproc-per-node", str(args.nproc),
                       "--max-restarts", str(args.max_restarts), "-m", "seqfunc", *argv])
    except ChildFailedError as exc:
        codes = [f.exitcode for f in exc.failures.values()]
        return next((c for c in codes if c and c > 0), 1)
    return 0
