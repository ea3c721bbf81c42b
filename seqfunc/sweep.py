"""Hyperparameter sweeps as vmapped runs: every member of a grid x seeds trained in one step.

    members = grid_members(base_cfg, {"lr": [1e-3, 3e-3], "weight_decay": [0.0, 0.1]}, seeds=[0, 1, 2])
    jobs = group_members(members)            # one vmapped job: 12 members
    result = train_members(members)          # seqfunc.sweep_job: result.params stacked (members, ...)

Members may differ in the optimizer's hyperparameters (:data:`INJECTED`: the learning rate,
i.e. the schedule's peak, its end value, Adam's betas, weight decay, momentum, the clipping
norm) and in the seed: those are tensors in the optimizer state
(:func:`seqfunc.optim.inject_hyperparams`), one row per member, so one
:func:`seqfunc.ensemble.make_ensemble_step` trains them all. They may also differ in the
model's fields that change no shape (:data:`seqfunc.config.MEMBER_VALUE`: the dropout
rates), which the step passes to each member's model as 0-d tensors
(:func:`member_model_values`). Members that differ in anything else (a model's width, the
schedule's shape) cannot share a step: :func:`group_members` puts them in separate jobs, run
one after the other.

Member ``i`` reproduces ``seqfunc train`` with its config (same keys, same data order, the
same update in broadcasting ops) up to float rounding.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import attrs
import torch

from seqfunc import optim, registry
from seqfunc.config import member_value_fields, to_dict
from seqfunc.contracts import optional
from seqfunc.errors import ConfigError
from seqfunc.runs.build import model_config
from seqfunc.runs.config import TrainConfig

#: TrainConfig fields that may differ between the members of one vmapped job.
INJECTED = ("lr", "lr_end", "b1", "b2", "weight_decay", "momentum", "clip_norm")
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
            f"{', '.join(INJECTED)}, another TrainConfig field, or model.NAME / "
            "data.NAME for a model or dataset option)"
        )
    return attrs.evolve(cfg, **{name: value})


#: Injected fields that only some optimizers read.
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


def job_key(cfg: TrainConfig) -> str:
    """What members of one vmapped job must share: everything but the injected fields, the
    model's :data:`~seqfunc.config.MEMBER_VALUE` fields (dropout rates) and the seed."""
    shared = {k: v for k, v in to_dict(cfg).items() if k not in INJECTED and k != "seed"}
    apart = member_value_fields(registry.get_model(cfg.model).Config)
    shared["model_options"] = {k: v for k, v in cfg.model_options.items() if k not in apart}
    shared["clipped"] = cfg.clip_norm is not None
    return repr(sorted(shared.items()))


def check_vmappable(model, name: str) -> None:
    """A one-line ConfigError for a model that says it cannot run under ``vmap``."""
    if not optional(model, "vmappable", True):
        raise ConfigError(
            f"model {name!r} cannot run under torch.func.vmap (torch's recurrent "
            "kernels have no batching rule), so its members cannot train in one "
            "vmapped step; train them one by one with seqfunc train"
        )


def member_model_values(members: Sequence[TrainConfig], model, dataset) -> dict[str, torch.Tensor]:
    """Each member's value of ``model``'s :data:`~seqfunc.config.MEMBER_VALUE` fields where
    the members of one job differ: ``{name: (members,) float64 tensor}`` (empty when they all
    agree, and the model then runs on its config's numbers)."""
    if members[0].init_from is not None:  # the model and its config come from that run
        if len({repr(sorted(m.model_options.items())) for m in members}) > 1:
            raise ConfigError(
                "a sweep that starts from init_from runs one model config; "
                "sweep training options only"
            )
        return {}
    configs = [model_config(m, type(model), dataset) for m in members]
    values = {}
    for name in member_value_fields(type(model.config)):
        column = [float(getattr(c, name)) for c in configs]
        if len(set(column)) > 1:
            values[name] = torch.tensor(column, dtype=torch.float64)
    return values


def with_values(model, values: dict[str, Any]):
    """``model`` with some config fields set to ``values`` (a member's 0-d tensors)."""
    return type(model)(attrs.evolve(model.config, **values)) if values else model


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


def _schedule(
    cfg: TrainConfig, steps: int, lr: torch.Tensor, lr_end: torch.Tensor
) -> optim.Schedule:
    """``cfg.schedule`` with its peak and end as tensors (one row per member)."""
    if cfg.schedule == "warmup_cosine":
        return optim.warmup_cosine(lr, min(cfg.warmup_steps, steps), steps, lr_end)
    if cfg.schedule == "step":
        return optim.step_decay(lr, cfg.step_size, cfg.gamma)
    return lambda count: lr


def members_optimizer(
    members: Sequence[TrainConfig], steps: int, *, rows: bool = True
) -> optim.GradientTransformation:
    """The members' optimizer (one job: they share all but :data:`INJECTED`), flattened, its
    hyperparameters ``(members, 1)`` tensors in the state; without clipping (the ensemble
    step clips each member with :func:`members_clip_norm`). As for ``seqfunc train``, an
    update that would make a member's parameter NaN or Inf is skipped, for that member alone
    (:func:`seqfunc.optim.apply_if_finite`, around the optimizer as in
    :func:`seqfunc.runs.build.make_optimizer`).

    ``rows=False`` (one member): the hyperparameters are 0-d tensors, for the single-run step
    :func:`seqfunc.train.make_step`; one compiled step then serves any values."""
    cfg = members[0]
    if cfg.optimizer not in ("adam", "adamw", "sgd"):
        raise ConfigError(f"optimizer {cfg.optimizer!r}: a sweep trains adam, adamw or sgd")
    if not rows and len(members) != 1:
        raise ValueError("members_optimizer(rows=False) takes one member")
    values = {
        name: [[float(getattr(m, name) or 0.0)] for m in members]
        if rows
        else float(getattr(cfg, name) or 0.0)
        for name in INJECTED
        if name != "clip_norm"
    }

    def factory(lr, lr_end, b1, b2, weight_decay, momentum):
        schedule = _schedule(cfg, steps, lr, lr_end)
        if cfg.optimizer == "adam":
            return optim.tensor_adam(schedule, b1, b2)
        if cfg.optimizer == "adamw":
            return optim.tensor_adamw(schedule, b1, b2, weight_decay=weight_decay)
        return optim.tensor_sgd(schedule, momentum)

    return optim.flatten(
        optim.apply_if_finite(optim.inject_hyperparams(factory, **values), rows=rows)
    )


def members_clip_norm(members: Sequence[TrainConfig]) -> torch.Tensor | None:
    if members[0].clip_norm is None:
        return None
    return torch.tensor([m.clip_norm for m in members], dtype=torch.float32)
