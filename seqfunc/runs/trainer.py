"""Configs made runnable: the pure step with its keys, the batches from any position, and
evaluation. Everything here is a function of the configs; the loop (runs/loop.py) adds the
side effects.

A trainer trains one or several members: a run is one member and takes the single step of
:func:`seqfunc.train.make_step` (plain autograd eagerly, the flat optimizer); several members
(an ensemble's seeds, a sweep's grid points) take the vmapped step of
:func:`seqfunc.members_step.make_members_step`, their parameters stacked along a leading
``members`` axis and their metrics ``(members,)`` tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

import torch

from seqfunc import optim, rng
from seqfunc.devices import resolve_device
from seqfunc.members_step import init_members_state, make_members_step, member_keys, step_keys
from seqfunc.nn.dropout import global_rows
from seqfunc.runs import distributed
from seqfunc.runs.build import build, padding_trimmer, steps_per_epoch, total_steps
from seqfunc.runs.config import TrainConfig, check_accumulate
from seqfunc.runs.folder import RunFolder
from seqfunc.runs.members import (
    check_members,
    member_loss,
    member_model,
    member_model_values,
)
from seqfunc.runs.optimizer import make_optimizer
from seqfunc.runs.state import Progress
from seqfunc.sharding import gather_state, slice_state, whole_state_like
from seqfunc.tasks.members import evaluate_each
from seqfunc.train import TrainState, init_state, make_step, resolve_compile
from seqfunc.tree import ravel_tree, tree_leaves, tree_map, tree_stack


class Trainer:
    """``ranks``: this process's place in a data-parallel group (None: one process). Each
    rank then steps on its shard of every global batch and the step sums gradients over
    ranks (:mod:`seqfunc.runs.distributed`); one member only."""

    def __init__(
        self,
        members: TrainConfig | Sequence[TrainConfig],
        ranks: distributed.Ranks | None = None,
        *,
        artifacts: Path | None = None,
        built: tuple | None = None,
    ):
        """``members``: one config, or the configs of members that share one vmapped step.
        ``artifacts``: the run folder whose saved vocabulary the dataset reads (a resume).
        ``built``: ``(dataset, model, task)`` already built from the first config."""
        self.members = (members,) if isinstance(members, TrainConfig) else tuple(members)
        self.cfg = cfg = self.members[0]
        self.vmapped = len(self.members) > 1
        self.ranks = ranks
        self.device = distributed.rank_device(resolve_device(cfg.device), ranks)
        check_accumulate(cfg, ranks.world if ranks else 1)
        self.dataset, self.model, self.task = built if built else build(cfg, artifacts)
        if self.vmapped:
            check_members(self.members, self.model, ranks)
        # one process (members always): nothing to shard, so the option is a no-op (a resume
        # may change N)
        self.sharding = distributed.sharding(ranks) if cfg.shard_optimizer and ranks else None
        # A group (or accumulation) trims the global batch before cutting it, so that every
        # shard keeps the global batch's width and with it the dropout masks of one process.
        trim = padding_trimmer(cfg, self.task)
        cuts = ranks is not None or cfg.accumulate > 1
        self.trim_global = trim if cuts else None
        self.steps_per_epoch = steps_per_epoch(self.dataset, cfg.batch_size)
        self.total_steps = total_steps(cfg, self.steps_per_epoch)
        self.eval_every = cfg.eval_every or max(self.total_steps // 10, 1)
        self.checkpoint_every = cfg.checkpoint_every or self.eval_every
        self.optimizer = make_optimizer(
            self.members,
            self.total_steps,
            rows=self.vmapped,
            reduce=distributed.all_reduce_sum if self.sharding else None,
        )
        self.compiled = resolve_compile(cfg.compile, self.device)
        if self.vmapped:
            self.step_fn = self._members_step(None if cuts else trim, cuts)
            self.k_init, k_train = member_keys([m.seed for m in self.members])
        else:
            loss_fn = self.task.loss_fn(self.model)
            if cuts:  # each shard or micro-batch weighted by its share of the batch's targets
                loss_fn = distributed.sharded_loss(loss_fn)
            self.step_fn = make_step(
                loss_fn,
                self.optimizer,
                compile=cfg.compile,
                device=self.device,
                trim=None if cuts else trim,
                all_reduce=distributed.all_reduce_sum if ranks else None,
                precision=cfg.precision,
                sharding=self.sharding,
            )
            self.k_init, k_train = rng.split(rng.key(cfg.seed))
        self.k_train = k_train.to(self.device)

    def _members_step(self, trim, cuts: bool):
        values = member_model_values(self.members, self.model, self.dataset)
        loss_fn = member_loss(self.task, self.model) if values else self.task.loss_fn(self.model)
        step = make_members_step(
            distributed.sharded_loss(loss_fn) if cuts else loss_fn,
            self.optimizer,
            compile=self.compiled,
            member_values={k: v.to(self.device) for k, v in values.items()},
            precision=self.cfg.precision,
        )
        if trim is None:
            return step
        return lambda state, batch, keys: step(state, trim(batch), keys)

    def initial_state(self) -> TrainState:
        if self.vmapped:
            params = tree_stack([self.model.init(k) for k in self.k_init])
            return init_members_state(tree_map(lambda t: t.to(self.device), params), self.optimizer)
        params = tree_map(lambda t: t.to(self.device), self.model.init(self.k_init))
        if self.sharding is None:
            return init_state(params, self.optimizer)
        opt_state = self.optimizer.flat_inner.init(self.sharding.take(ravel_tree(params)[0]))
        return TrainState(params, opt_state, torch.zeros((), dtype=torch.int64, device=self.device))

    def restored_state(self, params, opt_state, step: int) -> TrainState:
        """The state from a checkpoint's parameters and whole optimizer state (sliced here
        when this process keeps a slice of it)."""
        if self.sharding is not None:
            opt_state = slice_state(opt_state, _vector_length(params), self.sharding)
        return TrainState(
            params, opt_state, torch.tensor(step, dtype=torch.int64, device=self.device)
        )

    def whole_opt_state(self, state: TrainState):
        """The whole optimizer state, what a checkpoint stores: gathered from every process's
        slice under sharded optimizer state (a collective: every rank calls it at once)."""
        if self.sharding is None:
            return state.opt_state
        return gather_state(state.opt_state, _vector_length(state.params), self.sharding)

    def opt_state_template(self, state: TrainState):
        """The whole optimizer state's shapes, to read a checkpoint into (no collective)."""
        if self.sharding is None:
            return state.opt_state
        return whole_state_like(state.opt_state, _vector_length(state.params), self.sharding)

    def step(self, state: TrainState, batch: dict, step: int, stop: bool = False):
        """``(state, metrics, stop)`` after the step numbered ``step`` (its key:
        ``fold_in(k, step)``, one per member). On a rank of a group the step runs on the
        rank's rows of the global batch, with the dropout masks one process draws for those
        rows. ``stop`` in: this process asks to stop after the step; out: whether any rank
        did (every rank gets the same answer)."""
        key = step_keys(self.k_train, step) if self.vmapped else rng.fold_in(self.k_train, step)
        rows = contextlib.nullcontext()
        batch = self.trim_global(batch) if self.trim_global else batch
        if self.ranks is not None:
            start, count = distributed.shard_rows(next(iter(batch.values())).shape[0], self.ranks)
            batch = distributed.shard(batch, start, count, self.task.target_count)
            rows = global_rows(start, count)
        parts = self._micro_batches(batch)
        if self.ranks is not None:  # one vote a rank, in its first micro-batch
            for i, part in enumerate(parts):
                part["stop_votes"] = torch.tensor(float(stop and i == 0))
        parts = [{k: v.to(self.device, non_blocking=True) for k, v in p.items()} for p in parts]
        batch = parts if self.cfg.accumulate > 1 else parts[0]
        with rows:
            state, metrics = self.step_fn(state, batch, key)
        if self.ranks is not None:
            stop = float(metrics.pop("stop_votes")) > 0
        return state, metrics, stop

    def _micro_batches(self, batch: dict) -> list[dict]:
        """The batch cut into ``accumulate`` weighted micro-batches (the batch alone if 1)."""
        if self.cfg.accumulate == 1:
            return [batch]
        return distributed.micro_batches(batch, self.cfg.accumulate, self.task.target_count)

    def batches(self, progress: Progress) -> Iterator[tuple[int, int, dict]]:
        return train_batches(self.dataset, self.cfg.batch_size, progress)

    def evaluate(self, params, limit: int | None) -> list[dict]:
        """Each member's validation metrics, on the first ``limit`` batches (None: all)."""
        batches = lambda: islice(self.dataset.batches("val", self.cfg.eval_batch_size), limit)
        if self.vmapped:
            return evaluate_each(self.task, self.model, params, batches, device=self.device)
        return [self.task.evaluate(self.model, params, batches(), device=self.device)]

    def samples(self, params) -> list[str]:
        if self.vmapped or not self.cfg.examples or not hasattr(self.task, "examples"):
            return []
        return self.task.examples(
            self.model, params, self.dataset, self.cfg.examples, device=self.device
        )

    def nonfinite(self, opt_state) -> tuple[int, list[int]]:
        """``(in a row, in all)`` non-finite updates skipped so far: the fewest in a row of
        any member (all of them stuck: the job cannot go on) and each member's total (0s
        without the guard)."""
        guard = optim.finite_guard_state(opt_state)
        if guard is None:
            return 0, [0] * len(self.members)
        return int(guard.streak.min()), guard.skipped.reshape(-1).tolist()

    def member_models(self) -> list:
        """Each member's model as its config builds it (its own dropout rates): what its run
        folder's config.json records."""
        if not self.vmapped:
            return [self.model]
        return [member_model(m, self.model, self.dataset) for m in self.members]

    def config_records(self, folders: Sequence[RunFolder]) -> list[dict]:
        """Each member's ``config.json`` record in its run folder (``folders``, one per
        member; :meth:`RunFolder.config_record`)."""
        return [
            folder.config_record(m, self.dataset, model)
            for folder, m, model in zip(folders, self.members, self.member_models(), strict=True)
        ]

    def member_params(self, params, i: int):
        """Member ``i``'s parameters (stacked ones cut at row ``i``)."""
        return tree_map(lambda x: x[i], params) if self.vmapped else params

    def member_opt_state(self, opt_state, i: int):
        """Member ``i``'s rows of the optimizer state (shared 0-d leaves as they are)."""
        if not self.vmapped:
            return opt_state
        return tree_map(lambda x: x[i] if isinstance(x, torch.Tensor) and x.dim() else x, opt_state)


def _vector_length(params) -> int:
    """The length of the flat parameter vector."""
    return sum(leaf.numel() for leaf in tree_leaves(params))


def train_batches(dataset, batch_size: int, progress: Progress) -> Iterator[tuple[int, int, dict]]:
    """``(epoch, index in epoch, batch)`` of the training split from ``progress``'s position
    on, for ever."""
    epoch, skip = progress.epoch, progress.batch_in_epoch
    while True:
        batches = dataset.batches("train", batch_size, epoch=epoch)
        for index, batch in enumerate(islice(batches, skip, None), start=skip):
            yield epoch, index, batch
        epoch, skip = epoch + 1, 0
