"""Members: configs trained together in one vmapped step (an ensemble's seeds, a sweep's grid
points). They share every setting but :data:`~seqfunc.runs.optimizer.PER_MEMBER`, the model's
:data:`~seqfunc.config.MEMBER_VALUE` fields (dropout rates) and the seed; what this module
checks and derives for them, the loop (:mod:`seqfunc.runs.loop`) trains them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch

from seqfunc import registry
from seqfunc.config import member_value_fields, to_dict
from seqfunc.contracts import optional
from seqfunc.errors import ConfigError
from seqfunc.runs.build import model_config
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.optimizer import PER_MEMBER


def job_key(cfg: TrainConfig) -> str:
    """What members of one vmapped job must share: everything but the per-member
    hyperparameters, the model's :data:`~seqfunc.config.MEMBER_VALUE` fields (dropout rates)
    and the seed."""
    shared = {k: v for k, v in to_dict(cfg).items() if k not in PER_MEMBER and k != "seed"}
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


def check_members(members: Sequence[TrainConfig], model, ranks) -> None:
    """A one-line ConfigError unless ``members`` can train in one vmapped step of ``model``
    in this process."""
    if len({job_key(m) for m in members}) > 1:
        raise ConfigError(
            "the members differ in more than "
            f"{', '.join(PER_MEMBER)}, the model's dropout rates and the seed; "
            "group them with group_members (seqfunc.runs.sweep) and train each group alone"
        )
    check_vmappable(model, members[0].model)
    if ranks is not None:
        raise ConfigError(
            f"{len(members)} members in one vmapped step do not run data-parallel yet: run "
            "them in one process (they already share one step)"
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


def member_model(cfg: TrainConfig, model, dataset):
    """``model`` as member ``cfg`` has it (its own dropout rates): what its run folder's
    config.json records. Members that start from ``init_from`` share its model."""
    if cfg.init_from is not None:
        return model
    return type(model)(model_config(cfg, type(model), dataset))


def with_values(model, values: dict[str, Any]):
    """``model`` with some config fields set to ``values`` (a member's 0-d tensors)."""
    return type(model)(attrs.evolve(model.config, **values)) if values else model


def member_loss(task, model) -> Callable:
    """``loss(params, batch, key, values)``: the task's loss of ``model`` with one member's
    model values (``{name: 0-d tensor}``, see :func:`member_model_values`)."""
    return lambda params, batch, key, values: task.loss_fn(with_values(model, values))(
        params, batch, key
    )


def member_name(i: int, values: dict, seed: int) -> str:
    """The name of member ``i``'s run folder: its index, its values and its seed."""
    parts = [f"{k}={v}" for k, v in values.items()] + [f"seed={seed}"]
    return f"{i:03d}-" + "-".join(parts).replace("/", "_")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std
