"""Runs ``seqfunc <argv>`` in this process and injects a fault at a chosen step; the fault
tests start it as a subprocess. Faults are real: the process kills itself with SIGKILL (no
cleanup of any kind runs) or sends itself a signal.

    python run_driver.py FAULT STEP -- train ...     (or sweep ...: STEP counts a job's steps)
    python run_driver.py FAULT STEP -- ensemble OUT SEED,SEED,... TRAIN-FLAGS...

``ensemble``: ``fit_ensemble`` of the config ``seqfunc train TRAIN-FLAGS`` builds, into OUT;
it resumes OUT when OUT has checkpoints.

FAULT: none | kill (SIGKILL after step STEP) | kill-in-checkpoint (SIGKILL half-way through
writing the optimizer state of the checkpoint of step STEP) | SIGINT | SIGTERM | SIGINT2 (two
SIGINTs after step STEP; the second arrives while the checkpoint is written).

Under torchrun, ``SEQFUNC_FAULT_RANK=r`` puts the fault on rank r alone, and only in the
group's first attempt (a restarted group runs clean).
"""

import os
import signal
import sys

import torch

from seqfunc import cli
from seqfunc.runs import checkpoint, trainer

torch.set_num_threads(1)  # the same reduction order in every process


def after_step(n: int, action) -> None:
    """``action()`` after the step numbered ``n - 1`` of a run or of a sweep's job."""
    original = trainer.Trainer.step

    def step(self, state, batch, step, *args):
        out = original(self, state, batch, step, *args)
        if step + 1 == n:
            action()
        return out

    trainer.Trainer.step = step


def in_checkpoint(n: int, action) -> None:
    original_write, original_file = checkpoint.write, checkpoint._write_file
    current = {"step": None}

    def write(root, step, *args, **kwargs):
        current["step"] = step
        return original_write(root, step, *args, **kwargs)

    def write_file(path, data):
        if current["step"] == n and path.name == checkpoint.OPT_STATE:
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
            action()
        return original_file(path, data)

    checkpoint.write, checkpoint._write_file = write, write_file


def main() -> int:
    fault, n, sep, *argv = sys.argv[1:]
    assert sep == "--"
    n = int(n)
    me = os.getpid()
    target = os.environ.get("SEQFUNC_FAULT_RANK")
    if target is not None and (
        os.environ.get("RANK") != target or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0"
    ):
        fault = "none"
    kill = lambda: os.kill(me, signal.SIGKILL)
    if fault == "kill":
        after_step(n, kill)
    elif fault == "kill-in-checkpoint":
        in_checkpoint(n, kill)
    elif fault in ("SIGINT", "SIGTERM"):
        after_step(n, lambda: os.kill(me, getattr(signal, fault)))
    elif fault == "SIGINT2":
        after_step(n, lambda: os.kill(me, signal.SIGINT))
        in_checkpoint(n, lambda: os.kill(me, signal.SIGINT))
    elif fault != "none":
        raise SystemExit(f"unknown fault {fault}")
    if argv[0] == "ensemble":
        return ensemble(*argv[1:])
    return cli.main(argv)


def ensemble(out: str, seeds: str, *flags: str) -> int:
    from pathlib import Path

    from seqfunc.cli.train import resolve_config
    from seqfunc.runs import files
    from seqfunc.runs.ensemble import fit_ensemble

    cfg = resolve_config(cli.build_parser().parse_args(["train", *flags]))
    resume = (Path(out) / files.CHECKPOINTS).is_dir()
    fit_ensemble(cfg, [int(s) for s in seeds.split(",")], out_dir=out, resume=resume, log=print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
