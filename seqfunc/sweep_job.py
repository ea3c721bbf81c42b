"""One vmapped job of a sweep: members that share every setting but :data:`~seqfunc.sweep.INJECTED`
and the seed, trained together in one step, checkpointed and resumed like a run.

    result = train_members(members)                   # in memory
    result = train_members(members, folder=job_dir)   # checkpoints in job_dir/checkpoints/

With a folder, the job writes a checkpoint (stacked parameters, the optimizer state over the
``(members, n)`` matrix, and its :class:`~seqfunc.runs.state.Progress` with every member's
records so far) every ``checkpoint_every`` steps (default ``eval_every``), at the end, and on
SIGINT/SIGTERM (then :class:`~seqfunc.errors.RunInterrupted`). Called again on the same folder
it continues from the newest complete checkpoint and ends with the parameters and records the
uninterrupted job has: the step keys are ``fold_in(k_train, step)`` per member and the batches
a function of ``(config, epoch)``, exactly as for a run.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from itertools import islice
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import torch

from seqfunc import optim
from seqfunc.ensemble import init_members_state, make_ensemble_step, member_keys, step_keys
from seqfunc.errors import CheckpointError, ConfigError, RunInterrupted
from seqfunc.runs.build import build, padding_trimmer, steps_per_epoch, total_steps
from seqfunc.runs.config import TrainConfig, refuse_for_members
from seqfunc.runs.folder import RunFolder
from seqfunc.runs.signals import StopSignals
from seqfunc.runs.state import Progress
from seqfunc.runs.trainer import train_batches
from seqfunc.sweep import (
    INJECTED,
    check_vmappable,
    job_key,
    member_model_values,
    members_clip_norm,
    members_optimizer,
    with_values,
)
from seqfunc.tasks.members import evaluate_each
from seqfunc.train import TrainState
from seqfunc.tree import tree_map, tree_stack, tree_unstack


@attrs.frozen
class MembersResult:
    members: tuple[TrainConfig, ...]
    params: Any  # stacked: leaves (members, ...)
    opt_state: Any  # the flattened optimizer's state over the (members, n) matrix
    records: tuple[list[dict], ...]  # per member: its metrics.jsonl records
    steps: int
    train_s: float
    dataset: Any
    model: Any

    def member_params(self) -> list:
        return tree_unstack(self.params)

    def member_opt_state(self, i: int):
        """Member ``i``'s rows of the optimizer state (shared 0-d counters as they are)."""
        return tree_map(
            lambda x: x[i] if isinstance(x, torch.Tensor) and x.dim() else x, self.opt_state
        )


def member_loss(task, model) -> Callable:
    """``loss(params, batch, key, values)``: the task's loss of ``model`` with one member's
    model values (``{name: 0-d tensor}``, see :func:`seqfunc.sweep.member_model_values`)."""
    return lambda params, batch, key, values: task.loss_fn(with_values(model, values))(
        params, batch, key
    )


class MembersJob:
    """The members made runnable: their stacked initial state, the vmapped step with each
    member's key, the batches from any position, evaluation (what
    :class:`~seqfunc.runs.trainer.Trainer` is for one run)."""

    def __init__(self, members: Sequence[TrainConfig], dataset=None, model=None, task=None):
        if len({job_key(m) for m in members}) > 1:
            raise ConfigError(
                "train_members: the members differ in more than "
                f"{', '.join(INJECTED)}, the model's dropout rates and the seed; "
                "group them with group_members"
            )
        self.members = tuple(members)
        self.cfg = cfg = members[0]
        refuse_for_members(cfg, "train_members")
        if dataset is None or model is None or task is None:
            dataset, model, task = build(cfg)
        self.dataset, self.model, self.task = dataset, model, task
        check_vmappable(model, cfg.model)
        self.device = torch.device(cfg.device)
        self.total_steps = total_steps(cfg, steps_per_epoch(dataset, cfg.batch_size))
        self.eval_every = cfg.eval_every or max(self.total_steps // 10, 1)
        self.checkpoint_every = cfg.checkpoint_every or self.eval_every
        self.optimizer = members_optimizer(members, self.total_steps)
        clip = members_clip_norm(members)
        self.init_keys, train_keys = member_keys([m.seed for m in members])
        self.train_keys = train_keys.to(self.device)
        values = {
            k: v.to(self.device) for k, v in member_model_values(members, model, dataset).items()
        }
        self.step_fn = make_ensemble_step(
            member_loss(task, model) if values else task.loss_fn(model),
            self.optimizer,
            clip_norm=None if clip is None else clip.to(self.device),
            compile=bool(cfg.compile),
            member_values=values,
        )
        self.trim = padding_trimmer(cfg, task)

    def initial_state(self) -> TrainState:
        params = tree_stack([self.model.init(k) for k in self.init_keys])
        return init_members_state(tree_map(lambda t: t.to(self.device), params), self.optimizer)

    def restored_state(self, params, opt_state, step: int) -> TrainState:
        return TrainState(
            params, opt_state, torch.tensor(step, dtype=torch.int64, device=self.device)
        )

    def step(self, state: TrainState, batch: dict, step: int) -> tuple[TrainState, dict]:
        """Every member's step numbered ``step``; metrics are ``(members,)`` tensors."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        if self.trim is not None:  # as seqfunc train does (TrainConfig.trim_padding)
            batch = self.trim(batch)
        return self.step_fn(state, batch, step_keys(self.train_keys, step))

    def batches(self, at: Progress) -> Iterator[tuple[int, int, dict]]:
        return train_batches(self.dataset, self.cfg.batch_size, at)

    def evaluate(self, params, *, final: bool) -> list[dict]:
        """Each member's validation record, on the first ``eval_batches`` batches
        (``final_eval_batches`` at the end; None: all)."""
        limit = self.cfg.final_eval_batches if final else self.cfg.eval_batches
        batches = lambda: islice(self.dataset.batches("val", self.cfg.eval_batch_size), limit)
        return evaluate_each(self.task, self.model, params, batches, device=self.device)


def train_members(
    members: Sequence[TrainConfig],
    *,
    dataset=None,
    model=None,
    task=None,
    log: Callable[[str], None] | None = None,
    folder: str | Path | None = None,
) -> MembersResult:
    """Train ``members`` (one job: see :func:`seqfunc.sweep.group_members`) in one vmapped
    step, evaluating every member on the validation split every ``eval_every`` steps and at
    the end. ``folder``: checkpoint there, and continue from its newest complete checkpoint
    if it has one (see the module's docstring)."""
    job = MembersJob(members, dataset, model, task)
    run = RunFolder(folder) if folder is not None else None
    state, at, records = _starting_point(job, run, log)
    train_s = at.elapsed_s

    def checkpoint() -> Path:
        at.elapsed_s = train_s
        return run.write_checkpoint(
            at.step,
            state.params,
            state.opt_state,
            {**at.to_json(), "records": _as_lines(records)},
            job.cfg.keep_checkpoints,
        )

    signals = StopSignals() if run is not None else nullcontext(SimpleNamespace(received=None))
    with signals as stop:
        for epoch, index, batch in job.batches(at) if at.step < job.total_steps else ():
            start = time.perf_counter()
            state, metrics = job.step(state, batch, at.step)
            train_s += time.perf_counter() - start
            at.advance(epoch, index)
            at.window.append(metrics)
            last = at.step == job.total_steps
            if at.step % job.cfg.log_every == 0 or last:
                _log_train(records, at, epoch, _skipped(state.opt_state, len(job.members)))
            if at.step % job.eval_every == 0 or last:
                for member, record in zip(records, job.evaluate(state.params, final=last)):
                    member.append({"step": at.step, "split": "val", **record})
                if log:
                    losses = ", ".join(f"{r[-1]['loss']:.4f}" for r in records)
                    log(f"  step {at.step}/{job.total_steps}: val loss {losses}")
            if run is not None and (at.step % job.checkpoint_every == 0 or last or stop.received):
                written = checkpoint()
                if stop.received:
                    raise RunInterrupted(
                        f"{signal.Signals(stop.received).name} at step "
                        f"{at.step}: checkpoint written to {written}",
                        stop.received,
                    )
            if last:
                break
    return MembersResult(
        job.members,
        state.params,
        state.opt_state,
        records,
        at.step,
        train_s,
        job.dataset,
        job.model,
    )


def _starting_point(
    job: MembersJob, run: RunFolder | None, log
) -> tuple[TrainState, Progress, tuple]:
    """A fresh state at step 0, or the newest complete checkpoint's, with each member's
    records so far."""
    state = job.initial_state()
    fresh = (state, Progress(), tuple([] for _ in job.members))
    if run is None:
        return fresh
    found = run.latest_checkpoint(
        state.params, state.opt_state, device=job.device, log=log or (lambda line: None)
    )
    if found is None:
        return fresh
    checkpoint, params, opt_state, saved = found
    at = Progress.from_json(saved, where=str(checkpoint / "state.json"))
    lines = saved.get("records")
    if not isinstance(lines, list) or len(lines) != len(job.members):
        raise CheckpointError(
            f"{checkpoint / 'state.json'}: not the records of {len(job.members)} members"
        )
    if log:
        log(f"  resuming from {checkpoint}")
    records = tuple([json.loads(line) for line in member] for member in lines)
    return job.restored_state(params, opt_state, at.step), at, records


def _as_lines(records) -> list[list[str]]:
    """Each member's records as JSON lines, which keep their keys' order through the
    checkpoint (a resumed job's metrics.jsonl then reads byte for byte as the uninterrupted
    one's)."""
    return [[json.dumps(r) for r in member] for member in records]


def _skipped(opt_state, members: int) -> list[int]:
    """Each member's count of non-finite updates skipped so far (0s without the guard)."""
    guard = optim.finite_guard_state(opt_state)
    return [0] * members if guard is None else guard.skipped.reshape(-1).tolist()


def _log_train(records, at: Progress, epoch: int, skipped: list[int]) -> None:
    """Average the window of step metrics (tensors, or lists after a resume) into one train
    record per member, with its ``nonfinite_skipped`` as a run's train record has it."""
    window, at.window = at.window, []
    host = lambda v: v.detach().cpu() if isinstance(v, torch.Tensor) else torch.tensor(v)
    # sorted: a window restored from a checkpoint's JSON has its keys sorted
    mean = {
        k: torch.stack([host(m[k]) for m in window]).mean(dim=0).tolist() for k in sorted(window[0])
    }
    for i, member in enumerate(records):
        member.append(
            {
                "step": at.step,
                "split": "train",
                "epoch": epoch,
                **{k: v[i] for k, v in mean.items()},
                "nonfinite_skipped": skipped[i],
            }
        )
