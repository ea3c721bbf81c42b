"""Train several seeds of one configuration together: one vmapped step for all members.

    step = make_ensemble_step(task.loss_fn(model), optimizer, clip_norm=1.0)
    state = init_state(tree_stack([model.init(k) for k in init_keys]), optimizer)
    state, metrics = step(state, batch, train_keys)      # every metric has shape (members,)

The loss gradient of every member comes from ``torch.func.vmap`` over the same
``grad_and_value(loss_fn)`` that :func:`seqfunc.train.make_step` differentiates: the
parameters (and the dropout keys) are stacked along a leading ``members`` axis, the batch is
shared. The optimizer then runs once over the stacked trees: the transforms of
:mod:`seqfunc.optim` are elementwise (Adam moments, weight decay, the learning-rate step), so
on stacked leaves they do for every member exactly what they do for one; their step counter is
shared, as every member takes the same steps. Gradient clipping is the exception (a norm over
all leaves) and is done here per member with the same formula as
:func:`seqfunc.optim.clip_by_global_norm`. (The optimizer itself is not vmapped: torch's
multi-tensor ``_foreach`` kernels it uses have no batching rule.)

Member ``i`` with seed ``s`` uses the keys :func:`seqfunc.fit.fit` derives from ``s``
(``k_init, k_train = split(key(s))``, step key ``fold_in(k_train, step)``) and the same data
order, so it reproduces ``seqfunc train ... --seed s`` up to float rounding.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import attrs
import torch
from torch.func import grad_and_value, vmap

from seqfunc import optim, rng
from seqfunc.train import TrainState, init_state
from seqfunc.tree import tree_leaves, tree_map, tree_stack, tree_unstack

PyTree = Any


def member_norms(tree: PyTree) -> torch.Tensor:
    """Global L2 norm of each member of a stacked tree: ``(members,)``."""
    leaves = tree_leaves(tree)
    squares = [leaf.reshape(leaf.shape[0], -1).pow(2).sum(dim=1) for leaf in leaves]
    return torch.stack(squares).sum(dim=0).sqrt()


def clip_members(grads: PyTree, max_norm: float) -> tuple[PyTree, torch.Tensor]:
    """Scale each member's gradients by ``min(1, max_norm / norm)``; returns them and the
    norms before clipping."""
    norms = member_norms(grads)
    scale = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    return tree_map(lambda g: g * scale.reshape(-1, *([1] * (g.dim() - 1))), grads), norms


def make_ensemble_step(
    loss_fn: Callable, optimizer: optim.GradientTransformation, *, clip_norm: float | None = None
) -> Callable[[TrainState, dict, torch.Tensor], tuple[TrainState, dict]]:
    """``step(state, batch, keys) -> (state, metrics)`` over stacked params.

    ``state.params`` leaves have a leading ``members`` axis, ``keys`` is ``(members, 2)``,
    ``batch`` is shared. ``optimizer`` must not clip (pass ``clip_norm`` instead).
    Metrics (``loss``, ``grad_norm`` and the loss's aux ones) are ``(members,)`` tensors.
    """
    member_grads = vmap(grad_and_value(loss_fn, has_aux=True), in_dims=(0, None, 0))

    def step(state: TrainState, batch: dict, keys: torch.Tensor):
        grads, (loss, aux) = member_grads(state.params, batch, keys)
        if clip_norm:
            grads, norms = clip_members(grads, clip_norm)
        else:
            norms = member_norms(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        metrics = {"loss": loss, "grad_norm": norms, **aux}
        return TrainState(params, opt_state, state.step + 1), metrics

    return step


def member_keys(seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(init_keys, train_keys)``, each ``(members, 2)``, as :func:`seqfunc.fit.fit` derives
    them from each seed."""
    pairs = [rng.split(rng.key(int(s))) for s in seeds]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def step_keys(train_keys: torch.Tensor, step: int) -> torch.Tensor:
    return torch.stack([rng.fold_in(k, step) for k in train_keys])


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


@attrs.frozen
class EnsembleResult:
    seeds: tuple[int, ...]
    members: tuple[dict, ...]  # per seed: {"val": {...}, "test": {...}?}
    params: Any  # stacked
    steps: int
    train_s: float  # wall time of the training steps (no data loading, no evaluation)
    eval_s: float

    def summary(self, split: str = "val", metric: str = "accuracy") -> tuple[float, float]:
        return mean_std([m[split][metric] for m in self.members])


def fit_ensemble(
    cfg,
    seeds: Sequence[int],
    *,
    dataset=None,
    model=None,
    task=None,
    eval_splits: Sequence[str] = ("val",),
    log: Callable[[str], None] | None = None,
) -> EnsembleResult:
    """Train ``len(seeds)`` members of ``cfg`` (a :class:`seqfunc.fit.TrainConfig`; its
    ``seed`` is ignored) together; evaluate each member on ``eval_splits`` at the end.

    ``dataset``/``model``/``task`` default to what ``cfg`` names (pass them to reuse a loaded
    dataset across runs).
    """
    from seqfunc.fit import build, make_optimizer
    from seqfunc.runs import distributed

    if distributed.current() is not None:
        from seqfunc.errors import ConfigError

        raise ConfigError("fit_ensemble does not run data-parallel yet: run it in one process "
                          "(its members already share one vmapped step)")
    if dataset is None or model is None or task is None:
        dataset, model, task = build(cfg)
    device = torch.device(cfg.device)
    per_epoch = (
        dataset.num_batches("train", cfg.batch_size) if hasattr(dataset, "num_batches")
        else dataset.num_examples("train") // cfg.batch_size
    )
    total_steps = cfg.steps or (cfg.epochs or 1) * per_epoch
    optimizer = make_optimizer(attrs.evolve(cfg, clip_norm=None), total_steps, nonfinite_guard=False)
    init_keys, train_keys = member_keys(seeds)
    params = tree_stack([model.init(k) for k in init_keys])
    params = tree_map(lambda t: t.to(device), params)
    state = init_state(params, optimizer)
    step_fn = make_ensemble_step(task.loss_fn(model), optimizer, clip_norm=cfg.clip_norm)

    train_s = 0.0
    step = epoch = 0
    while step < total_steps:
        for batch in dataset.batches("train", cfg.batch_size, epoch=epoch):
            batch = {k: v.to(device) for k, v in batch.items()}
            keys = step_keys(train_keys, step).to(device)
            start = time.perf_counter()
            state, metrics = step_fn(state, batch, keys)
            train_s += time.perf_counter() - start
            step += 1
            if step >= total_steps:
                break
        epoch += 1
        if log:
            log(f"  epoch {epoch}: step {step}/{total_steps}, train loss "
                f"{[round(float(x), 4) for x in metrics['loss']]}, {train_s:.1f}s")

    start = time.perf_counter()
    members = []
    for member_params in tree_unstack(state.params):
        members.append({
            split: task.evaluate(
                model, member_params, dataset.batches(split, cfg.eval_batch_size), device=device
            )
            for split in eval_splits
        })
    eval_s = time.perf_counter() - start
    return EnsembleResult(tuple(int(s) for s in seeds), tuple(members), state.params, step,
                          train_s, eval_s)
