"""Ensembles: several seeds of one configuration trained together, a thin call of the loop
(:func:`seqfunc.runs.loop.fit_members`).

    result = fit_ensemble(cfg, seeds=[0, 1, 2])                   # in memory
    result = fit_ensemble(cfg, [0, 1, 2], out_dir="runs/ens")     # checkpoints, resumable
    result.summary("val", "accuracy")                             # mean, std over seeds

Member ``i`` with seed ``s`` uses the keys and data order of ``seqfunc train ... --seed s``:
one seed takes the same step and ends with the same parameters bit for bit; several share
the vmapped step (:mod:`seqfunc.members_step`) and end with them up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from seqfunc.runs.config import TrainConfig
from seqfunc.runs.loop import fit_members
from seqfunc.runs.members import mean_std
from seqfunc.tasks.members import evaluate_each
from seqfunc.tree import tree_stack


@attrs.frozen
class EnsembleResult:
    seeds: tuple[int, ...]
    members: tuple[dict, ...]  # per seed: {"val": {...}, "test": {...}?}
    params: Any  # stacked: leaves (members, ...)
    steps: int
    train_s: float  # wall time of the loop (steps and evaluations), resumes included

    def summary(self, split: str = "val", metric: str = "accuracy") -> tuple[float, float]:
        return mean_std([m[split][metric] for m in self.members])


def fit_ensemble(
    cfg: TrainConfig,
    seeds: Sequence[int],
    *,
    dataset=None,
    model=None,
    task=None,
    eval_splits: Sequence[str] = ("val",),
    log: Callable[[str], None] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
) -> EnsembleResult:
    """Train ``len(seeds)`` members of ``cfg`` (its ``seed`` is ignored) together, with
    everything ``seqfunc train`` does (compile, trim_padding, bounded evaluation every
    ``eval_every`` steps and a whole one at the end); evaluate each member on
    ``eval_splits`` at the end (validation: the loop's final evaluation).

    ``out_dir``: checkpoint there and leave one run folder per member under
    ``out_dir/members/``; ``resume=True`` continues it from its newest complete checkpoint
    (SIGINT/SIGTERM write one and raise :class:`~seqfunc.errors.RunInterrupted`) to the
    parameters of the uninterrupted ensemble. ``dataset``/``model``/``task`` default to what
    ``cfg`` names (pass them to reuse a loaded dataset across runs).
    """
    members = [attrs.evolve(cfg, seed=int(s)) for s in seeds]
    built = (dataset, model, task) if None not in (dataset, model, task) else None
    hint = f"fit_ensemble(..., out_dir={str(out_dir)!r}, resume=True)" if out_dir else None
    trained = fit_members(
        members,
        out_dir,
        resume=resume,
        built=built,
        log=log or (lambda line: None),
        resume_hint=hint,
    )
    trainer = trained.trainer
    by_split = {"val": [_result(r) for r in trained.last_val]}
    for split in eval_splits:
        if split != "val":
            by_split[split] = _evaluate(trainer, trained.state.params, split)
    results = tuple({split: by_split[split][i] for split in eval_splits} for i in range(len(seeds)))
    params = trained.state.params if trainer.vmapped else tree_stack([trained.state.params])
    return EnsembleResult(
        tuple(int(s) for s in seeds),
        results,
        params,
        trained.progress.step,
        trained.progress.elapsed_s,
    )


def _result(record: dict) -> dict:
    """A validation record as a result: its metrics and step, without the split and time."""
    return {k: v for k, v in record.items() if k not in ("split", "elapsed_s")}


def _evaluate(trainer, params, split: str) -> list[dict]:
    batches = lambda: trainer.dataset.batches(split, trainer.cfg.eval_batch_size)
    if trainer.vmapped:
        return evaluate_each(trainer.task, trainer.model, params, batches, device=trainer.device)
    return [trainer.task.evaluate(trainer.model, params, batches(), device=trainer.device)]
