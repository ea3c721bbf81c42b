"""A config made runnable: the pure step with its keys, the batches from any position, and
evaluation. Everything here is a function of the config; the loop (runs/loop.py) adds the
side effects."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import torch

from seqfunc import optim, rng
from seqfunc.devices import resolve_device
from seqfunc.nn.dropout import global_rows
from seqfunc.runs import distributed
from seqfunc.runs.build import build, make_optimizer, padding_trimmer, steps_per_epoch, total_steps
from seqfunc.runs.config import TrainConfig, check_accumulate
from seqfunc.runs.state import Progress
from seqfunc.train import TrainState, init_state, make_step, resolve_compile
from seqfunc.tree import tree_map


class Trainer:
    """``ranks``: this process's place in a data-parallel group (None: one process). Each
    rank then steps on its shard of every global batch and the step sums gradients over
    ranks (:mod:`seqfunc.runs.distributed`)."""

    def __init__(
        self,
        cfg: TrainConfig,
        ranks: distributed.Ranks | None = None,
        *,
        artifacts: Path | None = None,
    ):
        """``artifacts``: the run folder whose saved vocabulary the dataset reads (a resume)."""
        self.cfg, self.ranks = cfg, ranks
        self.device = distributed.rank_device(resolve_device(cfg.device), ranks)
        check_accumulate(cfg, ranks.world if ranks else 1)
        self.dataset, self.model, self.task = build(cfg, artifacts)
        # A group (or accumulation) trims the global batch before cutting it, so that every
        # shard keeps the global batch's width and with it the dropout masks of one process.
        trim = padding_trimmer(cfg, self.task)
        cuts = ranks is not None or cfg.accumulate > 1
        self.trim_global = trim if cuts else None
        self.steps_per_epoch = steps_per_epoch(self.dataset, cfg.batch_size)
        self.total_steps = total_steps(cfg, self.steps_per_epoch)
        self.eval_every = cfg.eval_every or max(self.total_steps // 10, 1)
        self.checkpoint_every = cfg.checkpoint_every or self.eval_every
        self.optimizer = make_optimizer(cfg, self.total_steps)
        self.compiled = resolve_compile(cfg.compile, self.device)
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
        )
        self.k_init, k_train = rng.split(rng.key(cfg.seed))
        self.k_train = k_train.to(self.device)

    def initial_state(self) -> TrainState:
        params = tree_map(lambda t: t.to(self.device), self.model.init(self.k_init))
        return init_state(params, self.optimizer)

    def restored_state(self, params, opt_state, step: int) -> TrainState:
        return TrainState(
            params, opt_state, torch.tensor(step, dtype=torch.int64, device=self.device)
        )

    def step(self, state: TrainState, batch: dict, step: int, stop: bool = False):
        """``(state, metrics, stop)`` after the step numbered ``step`` (its key:
        ``fold_in(k, step)``). On a rank of a group the step runs on the rank's rows of the
        global batch, with the dropout masks one process draws for those rows. ``stop`` in:
        this process asks to stop after the step; out: whether any rank did (every rank gets
        the same answer)."""
        key = rng.fold_in(self.k_train, step)
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

    def evaluate(self, params, limit: int | None) -> dict:
        """The task's validation metrics, on the first ``limit`` batches (None: all)."""
        batches = self.dataset.batches("val", self.cfg.eval_batch_size)
        return self.task.evaluate(self.model, params, islice(batches, limit), device=self.device)

    def samples(self, params) -> list[str]:
        if not self.cfg.examples or not hasattr(self.task, "examples"):
            return []
        return self.task.examples(
            self.model, params, self.dataset, self.cfg.examples, device=self.device
        )

    @staticmethod
    def nonfinite(opt_state) -> tuple[int, int]:
        """``(in a row, in all)`` non-finite updates skipped so far (0, 0 without the guard)."""
        guard = optim.finite_guard_state(opt_state)
        return (0, 0) if guard is None else (int(guard.streak), int(guard.skipped))


def train_batches(dataset, batch_size: int, progress: Progress) -> Iterator[tuple[int, int, dict]]:
    """``(epoch, index in epoch, batch)`` of the training split from ``progress``'s position
    on, for ever."""
    epoch, skip = progress.epoch, progress.batch_in_epoch
    while True:
        batches = dataset.batches("train", batch_size, epoch=epoch)
        for index, batch in enumerate(islice(batches, skip, None), start=skip):
            yield epoch, index, batch
        epoch, skip = epoch + 1, 0
