"""Hyperparameter sweeps as vmapped runs: every member of a grid x seeds trained in one step.

    members = grid_members(base, {"lr": [1e-3, 3e-3], "weight_decay": [0.0, 0.1]}, seeds=[0, 1, 2])
    jobs = group_members(members)            # one vmapped job: 12 members
    result = train_members(members)          # result.params stacked (members, ...)

Members may differ in the optimizer's hyperparameters
(:data:`~seqfunc.runs.optimizer.PER_MEMBER`: the learning rate, i.e. the schedule's peak, its
end value, Adam's betas, weight decay, momentum, the clipping norm) and in the seed: those
that differ are tensors in the optimizer state, one row per member
(:func:`seqfunc.runs.optimizer.make_optimizer`), so one vmapped step trains them all. They
may also differ in the model's fields that change no shape (:data:`seqfunc.config.MEMBER_VALUE`:
the dropout rates), which the step passes to each member's model as 0-d tensors
(:func:`seqfunc.runs.members.member_model_values`). Members that differ in anything else (a
model's width, the schedule's shape) cannot share a step: :func:`group_members` puts them in
separate jobs, run one after the other. A job is trained by the one loop
(:func:`seqfunc.runs.loop.fit_members`): checkpoints, signals and resume as for a run.

Member ``i`` reproduces ``seqfunc train`` with its config (same keys, same data order, the
same update in broadcasting ops): bit for bit when it is alone in its job (the run's step),
up to float rounding in a vmapped step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from seqfunc.errors import ConfigError
from seqfunc.runs import files
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.loop import fit_members
from seqfunc.runs.members import job_key
from seqfunc.runs.optimizer import PER_MEMBER
from seqfunc.tree import tree_stack, tree_unstack

#: Prefixes of grid names that set model and dataset options.
OPTION_PREFIXES = {"model.": "model_options", "data.": "dataset_options"}


def with_value(cfg: TrainConfig, name: str, value) -> TrainConfig:
    """``cfg`` with one grid value set: a TrainConfig field, or ``model.NAME``/``data.NAME``
    for a model or dataset option."""
    for prefix, field in OPTION_PREFIXES.items():
        if name.startswith(prefix):
            options = {**getattr(cfg, field), name[len(prefix) :]: value}
            return attrs.evolve(cfg, **{field: options})
    if name not in attrs.fields_dict(TrainConfig) or name in ("seed", "dataset", "model"):
        raise ConfigError(
            f"--grid {name}: not a training field (use one of "
            f"{', '.join(PER_MEMBER)}, another TrainConfig field, or model.NAME / "
            "data.NAME for a model or dataset option)"
        )
    return attrs.evolve(cfg, **{name: value})


#: Per-member fields that only some optimizers read.
READ_BY = {
    "weight_decay": ("adamw",),
    "momentum": ("sgd",),
    "b1": ("adam", "adamw", "radam"),
    "b2": ("adam", "adamw", "radam"),
}


def grid_members(
    base: TrainConfig, grid: dict[str, Sequence], seeds: Sequence[int]
) -> list[TrainConfig]:
    """The product of the grid's values (in the order given) times the seeds, seeds fastest."""
    for name in grid:
        readers = READ_BY.get(name)
        if readers and base.optimizer not in readers and "optimizer" not in grid:
            raise ConfigError(
                f"--grid {name}: optimizer {base.optimizer!r} does not read it "
                f"(only {', '.join(readers)}); add --optimizer {readers[0]}"
            )
    members = []
    for values in itertools.product(*grid.values()):
        point = base
        for name, value in zip(grid, values):
            point = with_value(point, name, value)
        members.extend(attrs.evolve(point, seed=int(s)) for s in seeds)
    return members


def group_members(
    members: Sequence[TrainConfig], max_members: int | None = None
) -> list[list[int]]:
    """Indices of ``members`` by vmapped job: one group per :func:`job_key`, each cut into
    chunks of at most ``max_members``."""
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(members):
        groups.setdefault(job_key(cfg), []).append(i)
    size = max_members or max(len(g) for g in groups.values())
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


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


def train_members(
    members: Sequence[TrainConfig],
    *,
    dataset=None,
    model=None,
    task=None,
    log: Callable[[str], None] | None = None,
    folder: str | Path | None = None,
    member_dirs: Sequence[str | Path] | None = None,
    resume_hint: str | None = None,
) -> MembersResult:
    """Train ``members`` (one job: see :func:`group_members`) in one step, evaluating every
    member on the validation split every ``eval_every`` steps and at the end.

    ``folder``: checkpoint there (``member_dirs``: each member's run folder, by default under
    ``folder/members/``), and continue from its newest complete checkpoint if it has one;
    SIGINT/SIGTERM write a checkpoint and raise :class:`~seqfunc.errors.RunInterrupted`.
    Without a folder nothing is written."""
    built = (dataset, model, task) if None not in (dataset, model, task) else None
    trained = fit_members(
        members,
        folder,
        member_dirs=member_dirs,
        resume=folder is not None and (Path(folder) / files.CHECKPOINTS).is_dir(),
        built=built,
        log=log or (lambda line: None),
        resume_hint=resume_hint,
    )
    trainer = trained.trainer
    params = trained.state.params
    if not trainer.vmapped:  # one member took the run's step: its tree, stacked
        params = tree_stack([params])
    return MembersResult(
        trainer.members,
        params,
        trained.state.opt_state,
        trained.records,
        trained.progress.step,
        trained.progress.elapsed_s,
        trainer.dataset,
        trainer.model,
    )
