"""``fit``: the host loop around the pure step. Data, logging, evaluation, checkpoints,
signals and resume; each concept lives in its own module of ``seqfunc.runs``."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqfunc.errors import CheckpointMismatch, NonFiniteError, RunInterrupted, SeqfuncError
from seqfunc.runs import distributed, tensorboard
from seqfunc.runs import resume as resume_checks
from seqfunc.runs.config import TrainConfig, check_resume_config
from seqfunc.runs.folder import MetricsLog, RunFolder
from seqfunc.runs.lock import FolderLock
from seqfunc.runs.plots import plot_metrics
from seqfunc.runs.side_tasks import SideTasks
from seqfunc.runs.signals import StopSignals
from seqfunc.runs.state import Progress
from seqfunc.runs.tensorboard import EVENTS_FOLDER
from seqfunc.runs.trainer import Trainer
from seqfunc.tree import tree_count


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
    log = log if writer else (lambda line: None)
    run, trainer, record, (state, at), lock = _setup(out_dir, cfg, resume, ranks, writer, log)
    try:
        return _train(run, trainer, record, state, at, ranks, writer, progress, log)
    finally:
        if lock is not None:
            lock.release()


def _train(
    run: RunFolder,
    trainer: Trainer,
    record: dict,
    state,
    at: Progress,
    ranks,
    writer: bool,
    progress: bool,
    log,
) -> dict[str, Any]:
    """The steps, evaluations and checkpoints of a set-up run; ``record`` is its config.json
    record, which every checkpoint keeps (what a resume checks against)."""
    cfg = trainer.cfg
    metrics = MetricsLog(
        run.path / "metrics.jsonl",
        at.metrics_lines,
        writer=writer,
        tensorboard=run.path / EVENTS_FOLDER if cfg.tensorboard else None,
    )
    if hasattr(trainer.dataset, "summary") and at.step == 0:
        log(trainer.dataset.summary())
    log(
        f"{cfg.model} on {cfg.dataset}: {tree_count(state.params):,} parameters, "
        f"{trainer.total_steps} steps of {cfg.batch_size} on {trainer.device}"
        f"{' (compiled)' if trainer.compiled else ''}"
    )
    side = SideTasks(
        trainer,
        metrics,
        progress=progress and writer,
        start_step=at.step,
        log=log,
        evaluates=writer,
    )
    started, elapsed_before = time.perf_counter(), at.elapsed_s
    clock = lambda: round(elapsed_before + time.perf_counter() - started, 2)

    def checkpoint():
        at.metrics_lines, at.elapsed_s = metrics.lines, clock()
        return run.write_checkpoint(
            at.step,
            state.params,
            state.opt_state,
            {**at.to_json(), resume_checks.CONFIG_KEY: record},
            cfg.keep_checkpoints,
        )

    try:
        with StopSignals() as stop, side:
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
                        f"checkpoint written to {folder}. Resume with: "
                        f"seqfunc train --resume {run}",
                        received,
                    )
                side.advance()
                if last:
                    break
    except KeyboardInterrupt:  # a second Ctrl-C: out at once, the last checkpoint is whole
        raise RunInterrupted(
            f"stopped at once at step {at.step}; the last checkpoint is "
            f"{run.last_checkpoint_path()}. Resume with: seqfunc train --resume {run}",
            signal.SIGINT,
        ) from None
    at.metrics_lines, at.elapsed_s = metrics.lines, clock()
    run.write_final(state.params, state.opt_state, at.to_json())
    side.plot(run.path / "curves.png", plot_metrics)
    if not side.last_val:  # a resume at its last step: the run's last evaluation
        return next((r for r in reversed(metrics.records) if r.get("split") == "val"), {})
    return side.last_val


def _setup(out_dir, cfg, resume: bool, ranks, writer: bool, log):
    """``(run folder, trainer, config record, (state, progress), lock)``: the writer locks the folder first
    (runs/lock.py); the trainer is built and a resume's checkpoint read and checked
    (runs/resume.py) before anything is written. A config error, a mismatch or a held lock
    stops every rank here; a new folder that got no further is removed again."""
    run = RunFolder(out_dir, writer=writer)
    lock = trainer = record = start = failure = None
    try:
        if writer:
            lock = FolderLock.acquire(run.path)
        trainer = Trainer(
            _run_config(run, cfg, resume), ranks, artifacts=run.path if resume else None
        )
        if trainer.cfg.tensorboard and writer:
            tensorboard.require()  # before anything is written
        record = run.config_record(trainer.cfg, trainer.dataset, trainer.model)
        start = _starting_state(run, trainer, record, resume, log)
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
        run.write_config(trainer.cfg, trainer.dataset, trainer.model, artifacts=not resume)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return run, trainer, record, start, lock


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


def _starting_state(run: RunFolder, trainer: Trainer, record: dict, resume: bool, log):
    """A fresh state at step 0, or the newest complete checkpoint's with its Progress, checked
    to fit this run (:mod:`seqfunc.runs.resume`)."""
    state = trainer.initial_state()
    if not resume:
        return state, Progress()
    try:
        found = run.latest_checkpoint(state.params, state.opt_state, device=trainer.device, log=log)
    except CheckpointMismatch as exc:
        raise resume_checks.mismatch(run, exc.folder, exc, record) from None
    if found is None:
        log(f"resuming {run}: no complete checkpoint, starting from step 0")
        return state, Progress()
    folder, params, opt_state, saved = found
    if isinstance(saved.get(resume_checks.CONFIG_KEY), dict):
        resume_checks.check_config(run, record, folder, saved[resume_checks.CONFIG_KEY])
    at = Progress.from_json(saved, where=str(folder / "state.json"))
    resume_checks.check_length(run, at, trainer.total_steps, folder)
    log(f"resuming {run} from {folder.name}")
    return trainer.restored_state(params, opt_state, at.step), at


def _nonfinite_error(run: RunFolder, step: int, streak: int, limit: int) -> NonFiniteError:
    good = run.last_checkpoint_path()
    return NonFiniteError(
        f"step {step}: {streak} updates in a row had non-finite gradients (NaN or Inf) or would "
        f"have made a parameter non-finite, and were "
        f"skipped (max_nonfinite={limit}); the parameters stayed finite. Last good checkpoint: "
        f"{good if good else 'none yet'}; try a lower learning rate or clip_norm, then resume or restart"
    )
