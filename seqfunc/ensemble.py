"""Train several seeds of one configuration together: one vmapped step for all members.

    step = make_ensemble_step(task.loss_fn(model), optimizer, clip_norm=1.0)
    state = init_members_state(tree_stack([model.init(k) for k in init_keys]), optimizer)
    state, metrics = step(state, batch, train_keys)      # every metric has shape (members,)

Every member's loss is the same ``loss_fn`` that :func:`seqfunc.train.make_step`
differentiates, vmapped: the parameters (and the dropout keys) are stacked along a leading
``members`` axis, the batch is shared. The parameters travel as one ``(members, n)`` matrix,
so the flattened optimizer's elementwise transforms (Adam moments, weight decay, the
learning-rate step) run once for all members and do for each row exactly what they do for one
run's vector; each member has its own step counters (a ``(members, 1)`` column), since a
member that skips a non-finite update does not advance them. Gradient
clipping (a norm over all of a member's parameters) is a row norm here, with the formula of
:func:`seqfunc.optim.clip_by_global_norm`.

Member ``i`` with seed ``s`` uses the keys :func:`seqfunc.fit.fit` derives from ``s``
(``k_init, k_train = split(key(s))``, step key ``fold_in(k_train, step)``) and the same data
order, so it reproduces ``seqfunc train ... --seed s`` up to float rounding. As a run does,
a member skips an update that would make one of its parameters NaN or Inf
(:func:`seqfunc.optim.apply_if_finite` with ``rows=True``: each member on its own, with its
own step counters; the others train on).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch
from torch.func import grad_and_value, vmap

from seqfunc import optim, rng
from seqfunc.compiled import compile_fn
from seqfunc.train import TrainState
from seqfunc.tree import (
    ravel_tree,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_stack,
    tree_unflatten,
)

PyTree = Any


def ravel_members(tree: PyTree) -> tuple[torch.Tensor, Callable[[torch.Tensor], PyTree]]:
    """``(flat (members, n), unravel)``: each member's leaves concatenated into one row (the
    order of :func:`seqfunc.tree.ravel_tree`), and the function that cuts such a matrix back
    into a stacked tree of views."""
    leaves, spec = tree_flatten(tree)
    members = leaves[0].shape[0]
    shapes = [leaf.shape[1:] for leaf in leaves]
    sizes = [math.prod(shape) for shape in shapes]

    def unravel(flat: torch.Tensor) -> PyTree:
        pieces = flat.split(sizes, dim=1)
        return tree_unflatten([p.view(members, *s) for p, s in zip(pieces, shapes)], spec)

    return torch.cat([leaf.reshape(members, -1) for leaf in leaves], dim=1), unravel


def clip_rows(grads: torch.Tensor, max_norm) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each row of ``grads`` ``(members, n)`` by ``min(1, max_norm / norm)`` (the formula
    of :func:`seqfunc.optim.clip_by_global_norm`); ``max_norm`` a float or ``(members,)``.
    Returns the clipped rows and the norms ``(members,)`` before clipping."""
    norms = torch.linalg.vector_norm(grads, dim=1)
    scale = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    return grads * scale[:, None], norms


def init_members_state(params: PyTree, optimizer: optim.GradientTransformation) -> TrainState:
    """The state :func:`make_ensemble_step` starts from: stacked ``params`` and the flattened
    ``optimizer``'s state over their ``(members, n)`` matrix (moments ``(members, n)``)."""
    device = tree_leaves(params)[0].device
    return TrainState(
        params,
        optimizer.flat_inner.init(ravel_members(params)[0]),
        torch.zeros((), dtype=torch.int64, device=device),
    )


def make_ensemble_step(
    loss_fn: Callable,
    optimizer: optim.GradientTransformation,
    *,
    clip_norm=None,
    compile: bool = False,
    member_values: dict[str, torch.Tensor] | None = None,
) -> Callable[[TrainState, dict, torch.Tensor], tuple[TrainState, dict]]:
    """``step(state, batch, keys) -> (state, metrics)`` over stacked params.

    ``state.params`` leaves have a leading ``members`` axis (start from
    :func:`init_members_state`), ``keys`` is ``(members, 2)``, ``batch`` is shared.
    ``optimizer`` is a flattened one (:func:`seqfunc.optim.flatten`) that does not clip:
    ``clip_norm`` (a float, or a ``(members,)`` tensor: one norm per member) clips each
    member's gradient. Metrics (``loss``, ``grad_norm`` and the loss's aux ones) are
    ``(members,)`` tensors. ``compile=True`` compiles the whole step (once per batch shape).

    ``member_values``: ``{name: (members,) tensor}``, each member's value of model fields
    that change no shape (:data:`seqfunc.config.MEMBER_VALUE`, e.g. a dropout rate). The loss
    is then ``loss_fn(params, batch, key, values)``, ``values`` one member's ``{name: 0-d}``.

    The parameters travel as one ``(members, n)`` matrix (as :func:`seqfunc.train.make_step`
    holds one run's as a vector): the optimizer's elementwise kernels run once over all
    members, and clipping is one row norm. Eagerly, the forward pass is vmapped and the
    backward pass is plain autograd on the sum of the members' losses (each member's gradient
    is its own, as members share nothing): the gradients of ``vmap(grad(loss_fn))`` without
    functorch's grad layer under vmap, which doubled the cost of the step. Compiled, the
    graph is traced through ``vmap(grad_and_value(loss_fn))``.
    """
    inner = optimizer.flat_inner
    if inner is None:
        raise ValueError("make_ensemble_step: pass a flattened optimizer (seqfunc.optim.flatten)")
    layout = None  # (unravel of one member's vector, the core step, unravel of the matrix)
    last = (None, None)  # (params this step returned last, the matrix they view)

    def step(state: TrainState, batch: dict, keys: torch.Tensor):
        nonlocal layout, last
        params_tree, flat = last
        if state.params is not params_tree:
            flat, unravel_members = ravel_members(state.params)
            one = ravel_tree(tree_map(lambda leaf: leaf[0], state.params))[1]
            if layout is None or layout[0] is not one:
                core = _members_core(loss_fn, inner, one, clip_norm, compile, member_values)
                layout = (one, core, unravel_members)
        _, core, unravel_members = layout
        new_flat, opt_state, metrics = core(flat, state.opt_state, batch, keys)
        params = unravel_members(new_flat)
        last = (params, new_flat)
        return TrainState(params, opt_state, state.step + 1), metrics

    return step


def _members_core(
    loss_fn, inner, unravel_one, clip_norm, compiled: bool, member_values=None
) -> Callable:
    """``(flat (members, n), opt_state, batch, keys) -> (flat, opt_state, metrics)``."""
    values = member_values or {}
    with_values = loss_fn if values else (lambda params, batch, key, _: loss_fn(params, batch, key))
    member_loss = lambda row, batch, key, values: with_values(unravel_one(row), batch, key, values)
    in_dims = (0, None, 0, 0)
    if compiled:
        grads_of = vmap(grad_and_value(member_loss, has_aux=True), in_dims=in_dims)
    else:
        losses_of = vmap(member_loss, in_dims=in_dims)

        def grads_of(flat, batch, keys, values):
            leaf = flat.detach().requires_grad_()
            with torch.enable_grad():
                loss, aux = losses_of(leaf, batch, keys, values)
                (grads,) = torch.autograd.grad(loss.sum(), [leaf])
            aux = tree_map(lambda x: x.detach() if isinstance(x, torch.Tensor) else x, aux)
            return grads, (loss.detach(), aux)

    def core(flat, opt_state, batch, keys):
        grads, (loss, aux) = grads_of(flat, batch, keys, values)
        if clip_norm is not None:
            grads, norms = clip_rows(grads, clip_norm)
        else:
            norms = torch.linalg.vector_norm(grads, dim=1)
        updates, opt_state = inner.update(grads, opt_state, flat)
        return flat + updates, opt_state, {"loss": loss, "grad_norm": norms, **aux}

    return compile_fn(core, dynamic=False) if compiled else core


def member_keys(seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(init_keys, train_keys)``, each ``(members, 2)``, as :func:`seqfunc.fit.fit` derives
    them from each seed."""
    pairs = [rng.split(rng.key(int(s))) for s in seeds]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def step_keys(train_keys: torch.Tensor, step: int) -> torch.Tensor:
    """Each member's key of step ``step``, ``fold_in(k_train, step)``: ``(members, 2)``."""
    return rng.fold_in(train_keys, step)


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
    from seqfunc.runs.config import refuse_for_members
    from seqfunc.sweep import check_vmappable
    from seqfunc.tasks.members import evaluate_each

    if distributed.current() is not None:
        from seqfunc.errors import ConfigError

        raise ConfigError(
            "fit_ensemble does not run data-parallel yet: run it in one process "
            "(its members already share one vmapped step)"
        )
    refuse_for_members(cfg, "fit_ensemble")
    if dataset is None or model is None or task is None:
        dataset, model, task = build(cfg)
    check_vmappable(model, cfg.model)
    device = torch.device(cfg.device)
    per_epoch = (
        dataset.num_batches("train", cfg.batch_size)
        if hasattr(dataset, "num_batches")
        else dataset.num_examples("train") // cfg.batch_size
    )
    total_steps = cfg.steps or (cfg.epochs or 1) * per_epoch
    optimizer = make_optimizer(attrs.evolve(cfg, clip_norm=None), total_steps, rows=True)
    init_keys, train_keys = member_keys(seeds)
    params = tree_stack([model.init(k) for k in init_keys])
    params = tree_map(lambda t: t.to(device), params)
    state = init_members_state(params, optimizer)
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
            log(
                f"  epoch {epoch}: step {step}/{total_steps}, train loss "
                f"{[round(float(x), 4) for x in metrics['loss']]}, {train_s:.1f}s"
            )

    start = time.perf_counter()
    by_split = {
        split: evaluate_each(
            task,
            model,
            state.params,
            lambda: dataset.batches(split, cfg.eval_batch_size),  # noqa: B023 (called at once)
            device=device,
        )
        for split in eval_splits
    }
    members = [
        {split: records[i] for split, records in by_split.items()} for i in range(len(seeds))
    ]
    eval_s = time.perf_counter() - start
    return EnsembleResult(
        tuple(int(s) for s in seeds), tuple(members), state.params, step, train_s, eval_s
    )
