"""Hyperparameter sweeps as vmapped runs: every member of a grid x seeds trained in one step.

    members = grid_members(base_cfg, {"lr": [1e-3, 3e-3], "weight_decay": [0.0, 0.1]}, seeds=[0, 1, 2])
    result = train_members(members)          # one vmapped job: 12 members
    result.params                            # stacked: leaves (members, ...)

Members may differ in the optimizer's hyperparameters (:data:`INJECTED`: the learning rate,
i.e. the schedule's peak, its end value, Adam's betas, weight decay, momentum, the clipping
norm) and in the seed: those are tensors in the optimizer state
(:func:`seqfunc.optim.inject_hyperparams`), one row per member, so one
:func:`seqfunc.ensemble.make_ensemble_step` trains them all. Members that differ in anything
else (a model's width, its dropout rate, the schedule's shape) cannot share a step:
:func:`group_members` puts them in separate jobs, run one after the other.

Member ``i`` reproduces ``seqfunc train`` with its config (same keys, same data order, the
same update in broadcasting ops) up to float rounding.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Sequence

import attrs
import torch

from seqfunc import optim
from seqfunc.config import to_dict
from seqfunc.ensemble import init_members_state, make_ensemble_step, member_keys, step_keys
from seqfunc.errors import ConfigError
from seqfunc.runs.build import build, padding_trimmer, steps_per_epoch, total_steps
from seqfunc.runs.config import TrainConfig
from seqfunc.tree import tree_map, tree_stack, tree_unstack

#: TrainConfig fields that may differ between the members of one vmapped job.
INJECTED = ("lr", "lr_end", "b1", "b2", "weight_decay", "momentum", "clip_norm")
#: Prefixes of grid names that set model and dataset options.
OPTION_PREFIXES = {"model.": "model_options", "data.": "dataset_options"}


def with_value(cfg: TrainConfig, name: str, value) -> TrainConfig:
    """``cfg`` with one grid value set: a TrainConfig field, or ``model.NAME``/``data.NAME``
    for a model or dataset option."""
    for prefix, field in OPTION_PREFIXES.items():
        if name.startswith(prefix):
            options = {**getattr(cfg, field), name[len(prefix):]: value}
            return attrs.evolve(cfg, **{field: options})
    if name not in attrs.fields_dict(TrainConfig) or name in ("seed", "dataset", "model"):
        raise ConfigError(f"--grid {name}: not a training field (use one of "
                          f"{', '.join(INJECTED)}, another TrainConfig field, or model.NAME / "
                          "data.NAME for a model or dataset option)")
    return attrs.evolve(cfg, **{name: value})


#: Injected fields that only some optimizers read.
READ_BY = {"weight_decay": ("adamw",), "momentum": ("sgd",), "b1": ("adam", "adamw", "radam"),
           "b2": ("adam", "adamw", "radam")}


def grid_members(base: TrainConfig, grid: dict[str, Sequence], seeds: Sequence[int]) -> list[TrainConfig]:
    """The product of the grid's values (in the order given) times the seeds, seeds fastest."""
    for name in grid:
        readers = READ_BY.get(name)
        if readers and base.optimizer not in readers and "optimizer" not in grid:
            raise ConfigError(f"--grid {name}: optimizer {base.optimizer!r} does not read it "
                              f"(only {', '.join(readers)}); add --optimizer {readers[0]}")
    members = []
    for values in itertools.product(*grid.values()):
        point = base
        for name, value in zip(grid, values):
            point = with_value(point, name, value)
        members.extend(attrs.evolve(point, seed=int(s)) for s in seeds)
    return members


def job_key(cfg: TrainConfig) -> str:
    """What members of one vmapped job must share: everything but the injected fields and
    the seed."""
    shared = {k: v for k, v in to_dict(cfg).items() if k not in INJECTED and k != "seed"}
    shared["clipped"] = cfg.clip_norm is not None
    return repr(sorted(shared.items()))


def group_members(members: Sequence[TrainConfig], max_members: int | None = None) -> list[list[int]]:
    """Indices of ``members`` by vmapped job: one group per :func:`job_key`, each cut into
    chunks of at most ``max_members``."""
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(members):
        groups.setdefault(job_key(cfg), []).append(i)
    size = max_members or max(len(g) for g in groups.values())
    return [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]


def _schedule(cfg: TrainConfig, steps: int, lr: torch.Tensor, lr_end: torch.Tensor) -> optim.Schedule:
    """``cfg.schedule`` with its peak and end as tensors (one row per member)."""
    if cfg.schedule == "warmup_cosine":
        return optim.warmup_cosine(lr, min(cfg.warmup_steps, steps), steps, lr_end)
    if cfg.schedule == "step":
        return optim.step_decay(lr, cfg.step_size, cfg.gamma)
    return lambda count: lr


def members_optimizer(members: Sequence[TrainConfig], steps: int, *, rows: bool = True
                      ) -> optim.GradientTransformation:
    """The members' optimizer (one job: they share all but :data:`INJECTED`), flattened, its
    hyperparameters ``(members, 1)`` tensors in the state; without clipping (the ensemble
    step clips each member with :func:`members_clip_norm`).

    ``rows=False`` (one member): the hyperparameters are 0-d tensors, for the single-run step
    :func:`seqfunc.train.make_step`; one compiled step then serves any values."""
    cfg = members[0]
    if cfg.optimizer not in ("adam", "adamw", "sgd"):
        raise ConfigError(f"optimizer {cfg.optimizer!r}: a sweep trains adam, adamw or sgd")
    if not rows and len(members) != 1:
        raise ValueError("members_optimizer(rows=False) takes one member")
    values = {name: [[float(getattr(m, name) or 0.0)] for m in members] if rows
              else float(getattr(cfg, name) or 0.0)
              for name in INJECTED if name != "clip_norm"}

    def factory(lr, lr_end, b1, b2, weight_decay, momentum):
        schedule = _schedule(cfg, steps, lr, lr_end)
        if cfg.optimizer == "adam":
            return optim.tensor_adam(schedule, b1, b2)
        if cfg.optimizer == "adamw":
            return optim.tensor_adamw(schedule, b1, b2, weight_decay=weight_decay)
        return optim.tensor_sgd(schedule, momentum)

    return optim.flatten(optim.inject_hyperparams(factory, **values))


def members_clip_norm(members: Sequence[TrainConfig]) -> torch.Tensor | None:
    if members[0].clip_norm is None:
        return None
    return torch.tensor([m.clip_norm for m in members], dtype=torch.float32)


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
        return tree_map(lambda x: x[i] if isinstance(x, torch.Tensor) and x.dim() else x,
                        self.opt_state)


def train_members(
    members: Sequence[TrainConfig], *, dataset=None, model=None, task=None,
    log: Callable[[str], None] | None = None,
) -> MembersResult:
    """Train ``members`` (one job: see :func:`group_members`) in one vmapped step, evaluating
    every member on the validation split every ``eval_every`` steps and at the end."""
    cfg = members[0]
    keys = {job_key(m) for m in members}
    if len(keys) > 1:
        raise ConfigError("train_members: the members differ in more than "
                          f"{', '.join(INJECTED)} and the seed; group them with group_members")
    if dataset is None or model is None or task is None:
        dataset, model, task = build(cfg)
    device = torch.device(cfg.device)
    steps = total_steps(cfg, steps_per_epoch(dataset, cfg.batch_size))
    eval_every = cfg.eval_every or max(steps // 10, 1)
    optimizer = members_optimizer(members, steps)
    clip = members_clip_norm(members)
    init_keys, train_keys = member_keys([m.seed for m in members])
    params = tree_map(lambda t: t.to(device), tree_stack([model.init(k) for k in init_keys]))
    state = init_members_state(params, optimizer)
    step_fn = make_ensemble_step(task.loss_fn(model), optimizer,
                                 clip_norm=None if clip is None else clip.to(device),
                                 compile=bool(cfg.compile))
    trim = padding_trimmer(cfg, task)
    records: tuple[list[dict], ...] = tuple([] for _ in members)
    window: list[dict] = []
    train_s, step, epoch = 0.0, 0, 0
    while step < steps:
        for batch in dataset.batches("train", cfg.batch_size, epoch=epoch):
            batch = {k: v.to(device) for k, v in batch.items()}
            if trim is not None:  # as seqfunc train does (TrainConfig.trim_padding)
                batch = trim(batch)
            start = time.perf_counter()
            state, metrics = step_fn(state, batch, step_keys(train_keys, step).to(device))
            train_s += time.perf_counter() - start
            step += 1
            window.append(metrics)
            if step % cfg.log_every == 0 or step == steps:
                _log_train(records, window, step, epoch)
            if step % eval_every == 0 or step == steps:
                _evaluate(records, task, model, dataset, state.params, cfg, step, device,
                          final=step == steps)
                if log:
                    losses = ", ".join(f"{r[-1]['loss']:.4f}" for r in records)
                    log(f"  step {step}/{steps}: val loss {losses}")
            if step >= steps:
                break
        epoch += 1
    return MembersResult(tuple(members), state.params, state.opt_state, records, step, train_s,
                         dataset, model)


def _log_train(records, window: list[dict], step: int, epoch: int) -> None:
    mean = {k: torch.stack([m[k] for m in window]).mean(dim=0).tolist() for k in window[0]}
    window.clear()
    for i, member in enumerate(records):
        member.append({"step": step, "split": "train", "epoch": epoch,
                       **{k: v[i] for k, v in mean.items()}})


def _evaluate(records, task, model, dataset, params, cfg, step, device, final: bool) -> None:
    limit = cfg.final_eval_batches if final else cfg.eval_batches
    for member, member_params in zip(records, tree_unstack(params)):
        batches = itertools.islice(dataset.batches("val", cfg.eval_batch_size), limit)
        member.append({"step": step, "split": "val",
                       **task.evaluate(model, member_params, batches, device=device)})
