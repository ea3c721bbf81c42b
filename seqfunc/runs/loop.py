"""The one host loop around the pure step, for a run and for members trained together (an
ensemble's seeds, a sweep's grid points). Data, logging, evaluation, checkpoints, signals and
resume are written here once; each concept lives in its own module of ``seqfunc.runs``.

    fit(cfg, out_dir)                           # seqfunc train: one member, one run folder
    fit_members(members, out_dir)               # members: one vmapped step, one run folder each

A run is one member; its folder holds its checkpoints. Members share one folder of
checkpoints (their stacked state) and each has its own run folder, loadable like any run.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs

from seqfunc.errors import (
    CheckpointError,
    CheckpointMismatch,
    NonFiniteError,
    RunInterrupted,
    SeqfuncError,
)
from seqfunc.runs import distributed, files, tensorboard
from seqfunc.runs import resume as resume_checks
from seqfunc.runs.config import TrainConfig, check_resume_config
from seqfunc.runs.folder import MetricsLog, RunFolder
from seqfunc.runs.lock import FolderLock
from seqfunc.runs.members import member_name
from seqfunc.runs.side_tasks import SideTasks
from seqfunc.runs.signals import StopSignals
from seqfunc.runs.state import Progress
from seqfunc.runs.trainer import Trainer
from seqfunc.train import TrainState
from seqfunc.tree import tree_count


@attrs.frozen
class Trained:
    """What the loop leaves besides its folders: the final state (stacked for members),
    where it ended, each member's metrics records and last validation record."""

    trainer: Trainer
    state: TrainState
    progress: Progress
    records: tuple[list[dict], ...]
    last_val: tuple[dict, ...]


@attrs.frozen
class _Folders:
    """Where the loop writes: ``run`` holds the lock and the checkpoints, ``members`` each
    member's run folder (a run's is ``run`` itself); ``hint`` says how to resume."""

    run: RunFolder
    members: tuple[RunFolder, ...]
    hint: str | None
    persist: bool


def fit(
    cfg: TrainConfig | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    ranks: distributed.Ranks | None = None,
) -> dict[str, Any]:
    """Train, evaluate and checkpoint into the run folder ``out_dir``; returns the last
    validation record.

    ``resume=True`` continues ``out_dir`` from its newest complete checkpoint, with the
    config saved there (``cfg=None``) or ``cfg`` if it differs only in fields a resume may
    change (:data:`seqfunc.runs.config.RESUMABLE_CHANGES`), and ends with the parameters an
    uninterrupted run would have. SIGINT/SIGTERM write a checkpoint and raise
    :class:`~seqfunc.errors.RunInterrupted`; too many non-finite updates in a row raise
    :class:`~seqfunc.errors.NonFiniteError`.

    In a data-parallel group (``ranks``, by default the initialised ``torch.distributed``
    group, if any) every rank trains on its shard of each batch; rank 0 alone writes the run
    folder, logs and evaluates; every rank reads the checkpoint it resumes from.
    """
    ranks = ranks if ranks is not None else distributed.current()
    writer = ranks is None or ranks.is_writer
    run = RunFolder(out_dir, writer=writer)
    where = _Folders(run, (run,), f"seqfunc train --resume {run}", persist=True)

    def trainer() -> Trainer:
        config = _run_config(run, cfg, resume)
        return Trainer(config, ranks, artifacts=run.path if resume else None)

    trained = _fit(where, trainer, resume, ranks, progress, log if writer else (lambda line: None))
    return trained.last_val[0]


def fit_members(
    members: Sequence[TrainConfig],
    out_dir: str | Path | None,
    *,
    member_dirs: Sequence[str | Path] | None = None,
    resume: bool = False,
    built: tuple | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
    resume_hint: str | None = None,
) -> Trained:
    """Train ``members`` (configs that share all but their per-member hyperparameters,
    dropout rates and seed; one config trains as ``seqfunc train`` does) in one step, with
    the loop of :func:`fit`: evaluation, checkpoints, signals, resume.

    ``out_dir`` holds the checkpoints of the stacked state; ``member_dirs`` each member's run
    folder (default ``out_dir/members/NNN-seed=S``), written as the run goes (config.json,
    metrics.jsonl; the final parameters at the end). ``out_dir=None``: nothing is written
    (records in memory, no checkpoints; Ctrl-C raises ``KeyboardInterrupt`` at once).
    ``resume=True`` continues from the newest complete checkpoint in ``out_dir`` (from step 0
    if there is none) and ends as the uninterrupted job. ``built``: ``(dataset, model,
    task)`` of the first config. ``resume_hint``: the command a
    :class:`~seqfunc.errors.RunInterrupted` names."""
    persist = out_dir is not None
    run = RunFolder(out_dir if persist else ".", writer=persist)
    if member_dirs is None:
        member_dirs = [
            run.path / files.MEMBERS / member_name(i, {}, m.seed) for i, m in enumerate(members)
        ]
    folders = tuple(RunFolder(d, writer=persist) for d in member_dirs)
    if persist and not resume and run.checkpoints.exists():
        raise CheckpointError(
            f"{run} already holds checkpoints of members; resume them (resume=True) or "
            "choose another folder"
        )
    where = _Folders(run, folders, resume_hint, persist)
    return _fit(where, lambda: Trainer(members, built=built), resume, None, progress, log)


def _fit(where: _Folders, make_trainer, resume: bool, ranks, progress: bool, log) -> Trained:
    trainer, record, (state, at), lock = _setup(where, make_trainer, resume, ranks, log)
    try:
        return _train(where, trainer, record, state, at, ranks, progress, log)
    finally:
        if lock is not None:
            lock.release()


def _train(
    where: _Folders,
    trainer: Trainer,
    record: dict,
    state,
    at: Progress,
    ranks,
    progress: bool,
    log,
) -> Trained:
    """The steps, evaluations and checkpoints of a set-up run; ``record`` is its config
    record, which every checkpoint keeps (what a resume checks against)."""
    cfg, run = trainer.cfg, where.run
    metrics = [
        MetricsLog(
            folder.path / files.METRICS,
            at.metrics_lines,
            writer=folder.writer,
            tensorboard=folder.path / files.EVENTS if cfg.tensorboard else None,
        )
        for folder in where.members
    ]
    if hasattr(trainer.dataset, "summary") and at.step == 0:
        log(trainer.dataset.summary())
    count = len(trainer.members)
    log(
        f"{f'{count} members of ' if trainer.vmapped else ''}{cfg.model} on {cfg.dataset}: "
        f"{tree_count(state.params) // count:,} parameters{' each' if trainer.vmapped else ''}"
        f", {trainer.total_steps} steps of {cfg.batch_size} on {trainer.device}"
        f"{' (compiled)' if trainer.compiled else ''}"
    )
    evaluates = ranks is None or ranks.is_writer
    side = SideTasks(
        trainer,
        metrics,
        progress=progress and evaluates,
        start_step=at.step,
        log=log,
        evaluates=evaluates,
    )
    started, elapsed_before = time.perf_counter(), at.elapsed_s
    clock = lambda: round(elapsed_before + time.perf_counter() - started, 2)
    hint = f". Resume with: {where.hint}" if where.hint else ""

    def checkpoint():
        at.metrics_lines, at.elapsed_s = metrics[0].lines, clock()
        return run.write_checkpoint(
            at.step,
            state.params,
            trainer.whole_opt_state(state),
            {**at.to_json(), resume_checks.CONFIG_KEY: record},
            cfg.keep_checkpoints,
        )

    signals = StopSignals() if where.persist else nullcontext(SimpleNamespace(received=None))
    try:
        with signals as stop, side:
            for epoch, index, batch in trainer.batches(at) if at.step < trainer.total_steps else ():
                state, step_metrics, stopping = trainer.step(
                    state, batch, at.step, stop.received is not None
                )
                if ranks is None:  # alone, a signal that came during the step counts now
                    stopping = stop.received is not None
                at.advance(epoch, index)
                at.window.append(step_metrics)
                last = at.step == trainer.total_steps
                streak, skipped = trainer.nonfinite(state.opt_state)
                if at.step % cfg.log_every == 0 or last or streak >= cfg.max_nonfinite:
                    side.log_train(at, epoch, skipped, clock())
                if streak >= cfg.max_nonfinite:
                    raise _nonfinite_error(run, at.step, streak, cfg.max_nonfinite)
                if at.step % trainer.eval_every == 0 or last:
                    side.evaluate(state.params, at.step, clock(), final=last)
                if at.step % trainer.checkpoint_every == 0 or last or stopping:
                    folder = checkpoint()
                if stopping:  # on a rank that got no signal itself, another rank did
                    received = stop.received or signal.SIGTERM
                    raise RunInterrupted(
                        f"{signal.Signals(received).name} at step {at.step}: "
                        f"checkpoint written to {folder}{hint}",
                        received,
                    )
                side.advance()
                if last:
                    break
    except KeyboardInterrupt:  # a second Ctrl-C: out at once, the last checkpoint is whole
        if not where.persist:
            raise
        raise RunInterrupted(
            f"stopped at once at step {at.step}; the last checkpoint is "
            f"{run.last_checkpoint_path()}{hint}",
            signal.SIGINT,
        ) from None
    at.metrics_lines, at.elapsed_s = metrics[0].lines, clock()
    opt_state = trainer.whole_opt_state(state)
    for i, (folder, member_metrics) in enumerate(zip(where.members, metrics)):
        folder.write_final(
            trainer.member_params(state.params, i),
            trainer.member_opt_state(opt_state, i),
            at.to_json(),
        )
        if folder.writer:  # members trained in memory have no folder
            side.plot(folder.path / files.CURVES, member_metrics.records)
    last_val = side.last_val or [  # a resume at its last step: the run's last evaluation
        next((r for r in reversed(m.records) if r.get("split") == "val"), {}) for m in metrics
    ]
    return Trained(trainer, state, at, tuple(m.records for m in metrics), tuple(last_val))


def _setup(where: _Folders, make_trainer, resume: bool, ranks, log):
    """``(trainer, config record, (state, progress), lock)``: the writer locks the folder
    first (runs/lock.py); the trainer is built and a resume's checkpoint read and checked
    (runs/resume.py) before anything is written. A config error, a mismatch or a held lock
    stops every rank here; a new folder that got no further is removed again."""
    run = where.run
    lock = trainer = record = start = failure = None
    try:
        if run.writer:
            lock = FolderLock.acquire(run.path)
        trainer = make_trainer()
        if trainer.cfg.tensorboard and run.writer:
            tensorboard.require()  # before anything is written
        records = trainer.config_records(where.members)
        record = (
            records[0]
            if not trainer.vmapped
            else {f"member {i:03d}": r for i, r in enumerate(records)}
        )
        start = _starting_state(where, trainer, record, resume, log)
    except SeqfuncError as exc:
        failure = exc
    except BaseException:
        if lock is not None:
            lock.release(remove_created=not resume)
        raise
    if failure is not None and lock is not None:
        lock.release(remove_created=not resume)
    distributed.raise_together(failure, ranks)
    try:
        for folder, cfg, model in zip(where.members, trainer.members, trainer.member_models()):
            if folder.writer:
                folder.path.mkdir(parents=True, exist_ok=True)
            artifacts = not (folder.path / files.CONFIG).is_file()
            folder.write_config(cfg, trainer.dataset, model, artifacts=artifacts)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return trainer, record, start, lock


def _run_config(run: RunFolder, cfg: TrainConfig | None, resume: bool) -> TrainConfig:
    if not resume:
        if cfg is None:
            raise TypeError("fit: a TrainConfig is needed unless resume=True")
        run.refuse_overwrite()
        return cfg
    saved = run.saved_config()
    if cfg is None:
        return saved
    check_resume_config(saved, cfg, where=f"--resume {run}")
    return cfg


def _starting_state(where: _Folders, trainer: Trainer, record: dict, resume: bool, log):
    """A fresh state at step 0, or the newest complete checkpoint's with its Progress, checked
    to fit this run (:mod:`seqfunc.runs.resume`)."""
    run = where.run
    state = trainer.initial_state()
    if not resume:
        return state, Progress()
    try:
        template = trainer.opt_state_template(state)
        found = run.latest_checkpoint(state.params, template, device=trainer.device, log=log)
    except CheckpointMismatch as exc:
        raise resume_checks.mismatch(run, exc.folder, exc, record) from None
    if found is None:
        log(f"resuming {run}: no complete checkpoint, starting from step 0")
        return state, Progress()
    folder, params, opt_state, saved = found
    if isinstance(saved.get(resume_checks.CONFIG_KEY), dict):
        saved_record = saved[resume_checks.CONFIG_KEY]
        resume_checks.check_config(run, record, folder, saved_record, where.members)
    at = Progress.from_json(saved, where=str(folder / files.STATE))
    resume_checks.check_length(run, at, trainer.total_steps, folder)
    log(f"resuming {run} from {folder.name}")
    return trainer.restored_state(params, opt_state, at.step), at


def _nonfinite_error(run: RunFolder, step: int, streak: int, limit: int) -> NonFiniteError:
    good = run.last_checkpoint_path()
    return NonFiniteError(
        f"step {step}: {streak} updates in a row had non-finite gradients (NaN or Inf) or would "
        f"have made a parameter non-finite, and were "
        f"skipped (max_nonfinite={limit}); the parameters stayed finite. Last good checkpoint: "
        f"{good if good else 'none yet'}; try a lower learning rate or clip_norm, then resume or "
        "restart"
    )
