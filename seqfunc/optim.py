"""Functional optimizers in the optax shape: a pair of pure functions over pytrees.

    opt = chain(clip_by_global_norm(1.0), adam(warmup_cosine(1e-3, 200, 10_000)))
    opt_state = opt.init(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = apply_updates(params, updates)

Nothing is mutated in place. Learning rates may be floats or schedules ``step -> lr`` where
``step`` is a 0-d tensor, so a compiled step never recompiles as the rate changes. Leaf-wise
arithmetic uses torch's multi-tensor ``_foreach_*`` kernels (one call for all leaves: much less
Python overhead in eager mode; torch.compile fuses them either way).

Every hyperparameter of ``sgd``, ``adam`` and ``adamw`` (and of the transforms they chain) is
a float or a tensor: a tensor kept in the state by :func:`inject_hyperparams`, 0-d for one
run, or ``(members, 1)`` for the ``(members, n)`` matrix of a vmapped job of members, each
row then updated with its own value. Floats take the ``_foreach_*`` kernels, tensors the
broadcasting ones; the arithmetic is the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from seqfunc.tree import ravel_tree, tree_flatten, tree_unflatten

Schedule = Callable[[torch.Tensor], torch.Tensor]
Hyperparameter = float | torch.Tensor
ScalarOrSchedule = float | torch.Tensor | Schedule
PyTree = Any
#: ``reduce(x) -> x``: a 1-element tensor summed over the processes a vector is sharded over
Reduce = Callable[[torch.Tensor], torch.Tensor]

__all__ = [
    "GradientTransformation",
    "apply_updates",
    "chain",
    "flatten",
    "sgd",
    "adam",
    "adamw",
    "radam",
    "clip_by_global_norm",
    "global_norm",
    "scale_by_schedule",
    "constant",
    "step_decay",
    "linear_warmup",
    "cosine_decay",
    "join_schedules",
    "warmup_cosine",
    "apply_if_finite",
    "FiniteGuardState",
    "finite_guard_state",
    "adds_finitely",
    "inject_hyperparams",
    "InjectedState",
]


class GradientTransformation(NamedTuple):
    init: Callable[[PyTree], PyTree]
    update: Callable[[PyTree, PyTree, PyTree], tuple[PyTree, PyTree]]
    #: set by :func:`flatten`: the transformation it runs on the one raveled vector, for a
    #: caller that already holds parameters and gradients as that vector (make_step's step)
    flat_inner: GradientTransformation | None = None


# -- schedules --------------------------------------------------------------------------------


def _as_schedule(value: ScalarOrSchedule) -> Schedule:
    if callable(value):
        return value
    if isinstance(value, torch.Tensor):  # a hyperparameter in the state (inject_hyperparams)
        return lambda step: value
    return constant(value)


def constant(value: float) -> Schedule:
    return lambda step: torch.full_like(step, value, dtype=torch.float32)


def step_decay(init: float, step_size: int, gamma: float) -> Schedule:
    """``init * gamma ** (step // step_size)`` (``torch.optim.lr_scheduler.StepLR``)."""
    return lambda step: (
        init
        * torch.pow(
            torch.tensor(gamma, dtype=torch.float32, device=step.device),
            torch.div(step, step_size, rounding_mode="floor").to(torch.float32),
        )
    )


def linear_warmup(peak: float, steps: int, start: float = 0.0) -> Schedule:
    """From ``start`` to ``peak`` over ``steps`` (then ``peak``)."""
    steps = max(int(steps), 1)
    return lambda step: (
        start + (peak - start) * torch.clamp(step.to(torch.float32) / steps, max=1.0)
    )


def cosine_decay(init: float, steps: int, end: float = 0.0) -> Schedule:
    """Half a cosine from ``init`` down to ``end`` over ``steps`` (then ``end``)."""
    steps = max(int(steps), 1)

    def schedule(step):
        progress = torch.clamp(step.to(torch.float32) / steps, 0.0, 1.0)
        return end + 0.5 * (init - end) * (1.0 + torch.cos(math.pi * progress))

    return schedule


def join_schedules(schedules: list[Schedule], boundaries: list[int]) -> Schedule:
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, each seeing steps counted from its
    own start (optax's ``join_schedules``)."""
    if len(boundaries) != len(schedules) - 1:
        raise ValueError("join_schedules: need exactly one boundary between two schedules")

    def schedule(step):
        value = schedules[0](step)
        for boundary, later in zip(boundaries, schedules[1:]):
            value = torch.where(step >= boundary, later(step - boundary), value)
        return value

    return schedule


def warmup_cosine(peak: float, warmup_steps: int, total_steps: int, end: float = 0.0) -> Schedule:
    """Linear warmup to ``peak``, then cosine decay to ``end`` at ``total_steps``."""
    return join_schedules(
        [linear_warmup(peak, warmup_steps), cosine_decay(peak, total_steps - warmup_steps, end)],
        [warmup_steps],
    )


# -- transforms -------------------------------------------------------------------------------


def _leaves(tree):
    return tree_flatten(tree)[0]


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transforms in order, each to the updates of the one before."""

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def flatten(inner: GradientTransformation) -> GradientTransformation:
    """Run ``inner`` on one vector holding every leaf (optax's ``flatten``).

    Its state (Adam's moments...) is then one tensor per moment, and each of its steps a
    handful of whole-vector kernels instead of one small kernel per leaf: on the CPU, where
    ``_foreach_*`` ops loop over leaves, clipped AdamW over a 54-leaf GPT drops from ~15 ms to
    ~7 ms a step. The price is one concatenation of the gradients (and of the parameters, for
    transforms that read them) per step; the step of :func:`seqfunc.train.make_step`, compiled
    or eager, does not pay it: it holds the parameters as that one vector and calls
    ``flat_inner``.
    """

    def init(params):
        return inner.init(ravel_tree(params)[0])

    def update(updates, state, params=None):
        flat_updates, unravel = ravel_tree(updates)
        flat_params = None if params is None else ravel_tree(params)[0]
        flat_updates, state = inner.update(flat_updates, state, flat_params)
        return unravel(flat_updates), state

    return GradientTransformation(init, update, flat_inner=inner)


class FiniteGuardState(NamedTuple):
    """State of :func:`apply_if_finite`: the wrapped transformation's state, the number of
    non-finite updates in a row (``streak``) and in all (``skipped``), both 0-d int64."""

    inner: PyTree
    streak: torch.Tensor
    skipped: torch.Tensor


def apply_if_finite(
    inner: GradientTransformation, *, rows: bool = False, reduce: Reduce | None = None
) -> GradientTransformation:
    """Skip every update that would make a parameter NaN or Inf (optax's ``apply_if_finite``,
    which looks at the gradients only).

    An update is skipped when its gradients hold a NaN or an Inf, or when what it would apply
    does: the new parameters ``params + update`` (the update itself when ``params`` is not
    given). So a finite gradient times an infinite learning rate, or a parameter pushed past
    the float range, is skipped too. A skipped step returns zero updates and leaves
    ``inner``'s state as it was (its step counter too, so the schedule does not advance); it
    is counted in :class:`FiniteGuardState`. Branch-free (``torch.where``), so it compiles and
    vmaps like the rest: under ``vmap`` each member is checked and skipped on its own.
    Stopping after too many skips in a row is the caller's decision (``fit`` reads
    ``streak``).

    ``rows=True``: the parameters are the ``(members, n)`` matrix of an ensemble or a sweep
    (:func:`seqfunc.members_step.make_members_step`), every leaf with a leading ``members`` axis,
    and each member (row) is checked and skipped on its own, as a run alone would be: its own
    gradient norm, its own ``params + update``. So that a skipped member's step counters stay
    where they were while the others' advance, every 0-d leaf of ``inner``'s state (the step
    counters) becomes one ``(members, 1)`` column, which broadcasts against the rows;
    ``streak`` and ``skipped`` are ``(members,)``.

    ``reduce``: for a vector sharded over processes (:mod:`seqfunc.sharding`), a sum over
    them (see :func:`global_norm`), so that every process decides on the whole vector."""

    def init(params):
        if rows:
            members = _leaves(params)[0].shape[0]
            zero = torch.zeros(members, dtype=torch.int64, device=_leaves(params)[0].device)
            inner_state = inner.init(params)
            leaves, spec = tree_flatten(inner_state)
            column = lambda x: x.expand(members, 1).clone() if x.dim() == 0 else x
            return FiniteGuardState(
                tree_unflatten([column(x) for x in leaves], spec), zero, zero.clone()
            )
        zero = _count_state(params)
        return FiniteGuardState(inner.init(params), zero, zero.clone())

    def update(updates, state, params=None):
        new_updates, new_inner = inner.update(updates, state.inner, params)
        if rows:
            finite = torch.isfinite(row_norms(updates)) & adds_finitely(
                params, new_updates, rows=True
            )  # (members,)
            mask = lambda x: finite.view(-1, *([1] * (x.dim() - 1))) if x.dim() else finite.any()
        else:
            finite = torch.isfinite(global_norm(updates, reduce)) & adds_finitely(
                params, new_updates, reduce=reduce
            )
            mask = lambda x: finite
        keep = lambda new, old: torch.where(mask(new), new, old)
        leaves, spec = tree_flatten(new_updates)
        new_updates = tree_unflatten(
            [torch.where(mask(u), u, torch.zeros_like(u)) for u in leaves], spec
        )
        inner_state = tree_unflatten(
            [keep(n, o) for n, o in zip(_leaves(new_inner), _leaves(state.inner))],
            tree_flatten(state.inner)[1],
        )
        skip = (~finite).to(torch.int64)
        streak = (state.streak + 1) * skip
        return new_updates, FiniteGuardState(inner_state, streak, state.skipped + skip)

    return GradientTransformation(init, update)


def row_norms(tree: PyTree) -> torch.Tensor:
    """Each member's :func:`global_norm`: ``(members,)``, over every leaf's entries past the
    leading ``members`` axis."""
    leaves = _leaves(tree)
    norms = [torch.linalg.vector_norm(leaf.reshape(leaf.shape[0], -1), dim=1) for leaf in leaves]
    return (
        norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack(norms, dim=1), dim=1)
    )


def _bounds(tree: PyTree, rows: bool = False) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The smallest and largest entry over every leaf (NaN if any is NaN), None if none;
    with ``rows``, per member: ``(members,)`` each, over the entries past the leading axis."""
    if rows:
        pairs = [
            torch.aminmax(leaf.reshape(leaf.shape[0], -1), dim=1)
            for leaf in _leaves(tree)
            if leaf.numel()
        ]
        if not pairs:
            return None
        if len(pairs) == 1:
            return tuple(pairs[0])
        return (
            torch.stack([p[0] for p in pairs], dim=1).amin(dim=1),
            torch.stack([p[1] for p in pairs], dim=1).amax(dim=1),
        )
    pairs = [torch.aminmax(leaf) for leaf in _leaves(tree) if leaf.numel()]
    if not pairs:
        return None
    if len(pairs) == 1:
        return pairs[0]
    return torch.stack([p[0] for p in pairs]).amin(), torch.stack([p[1] for p in pairs]).amax()


def adds_finitely(
    params: PyTree | None, updates: PyTree, *, rows: bool = False, reduce: Reduce | None = None
) -> torch.Tensor:
    """A 0-d bool: is every entry of ``params + updates`` finite (of ``updates`` alone when
    ``params`` is None)? With ``rows``, one bool per member (leading axis): ``(members,)``.

    Decided from bounds, without forming the sum: ``lo_p + lo_u <= p + u <= hi_p + hi_u``
    entry by entry (float addition is monotonic), and a NaN or an Inf in either tree makes a
    bound NaN or Inf. So two ``aminmax`` passes, no allocation: ``isfinite`` over the
    vector costs 40x more on the CPU. It errs only towards skipping, and only near the end of
    the float range: when the largest parameter and the largest update, at different places,
    add up past it. ``reduce``: the trees are slices of vectors sharded over processes; the
    answer is then the whole vectors' (a sum of the processes' non-finite flags)."""
    finite = _adds_finitely(params, updates, rows)
    if reduce is None:
        return finite
    return reduce((~finite).to(torch.float32)) == 0


def _adds_finitely(params: PyTree | None, updates: PyTree, rows: bool) -> torch.Tensor:
    bounds_u = _bounds(updates, rows)
    if bounds_u is None:
        shape = (_leaves(updates)[0].shape[0],) if rows else ()
        return torch.ones(shape, dtype=torch.bool)
    bounds_p = _bounds(params, rows) if params is not None else None
    lo, hi = (
        bounds_u if bounds_p is None else (bounds_p[0] + bounds_u[0], bounds_p[1] + bounds_u[1])
    )
    return torch.isfinite(lo) & torch.isfinite(hi)


def finite_guard_state(opt_state: PyTree) -> FiniteGuardState | None:
    """The :class:`FiniteGuardState` in an optimizer state (outermost first), or None."""
    if isinstance(opt_state, FiniteGuardState):
        return opt_state
    if isinstance(opt_state, (tuple, list)):
        for part in opt_state:
            found = finite_guard_state(part)
            if found is not None:
                return found
    return None


def global_norm(tree: PyTree, reduce: Reduce | None = None) -> torch.Tensor:
    """sqrt of the sum of squares of every entry of every leaf. ``reduce(x) -> x``: the leaves
    are this process's slices of vectors sharded over processes (:mod:`seqfunc.sharding`) and
    ``reduce`` sums a 0-d tensor over them: the norm is then the whole vectors'."""
    if reduce is not None:
        return torch.sqrt(reduce(torch.square(_local_norm(_leaves(tree))).reshape(1))[0])
    return _local_norm(_leaves(tree))


def _local_norm(leaves: list) -> torch.Tensor:
    if torch.compiler.is_compiling() or any(map(torch._C._functorch.is_batchedtensor, leaves)):
        # (vmap has no batching rule for _foreach_norm)
        # Inductor runs _foreach_norm as one aten call per leaf; the norm of the concatenation
        # is one fused loop (sharing optim.flatten's concatenation of the same gradients).
        return torch.linalg.vector_norm(torch.cat([leaf.reshape(-1) for leaf in leaves]))
    norms = torch._foreach_norm(leaves)
    return torch.linalg.vector_norm(torch.stack(norms))


def clip_by_global_norm(
    max_norm: Hyperparameter, *, rows: bool = False, reduce: Reduce | None = None
) -> GradientTransformation:
    """Scale all updates by ``min(1, max_norm / global_norm)``.

    ``rows=True``: every leaf has a leading ``members`` axis (the ``(members, n)`` matrix of a
    vmapped job) and each member is clipped by its own norm; ``max_norm`` a float or a
    ``(members, 1)`` tensor, one norm per member. ``reduce``: the updates are slices of a
    vector sharded over processes, clipped by the whole vector's norm (:func:`global_norm`)."""

    def update(updates, state, params=None):
        leaves, spec = tree_flatten(updates)
        if rows:
            scale = torch.clamp(max_norm / (row_norms(leaves)[:, None] + 1e-6), max=1.0)
            per_leaf = lambda x: scale.view(-1, *([1] * (x.dim() - 1)))
            return tree_unflatten([x * per_leaf(x) for x in leaves], spec), state
        norm = global_norm(leaves, reduce)
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        return tree_unflatten(torch._foreach_mul(leaves, scale), spec), state

    return GradientTransformation(lambda params: (), update)


def _count_state(params):
    leaves = _leaves(params)
    device = leaves[0].device if leaves else None
    return torch.zeros((), dtype=torch.int64, device=device)


def _broadcasting(leaves: list, *hyperparameters) -> bool:
    """Whether to use broadcasting ops rather than ``_foreach_*``: for tensor hyperparameters
    that are not 0-d (one per member), and under ``vmap`` (which has no batching rule for
    ``_foreach_*``)."""
    return any(isinstance(h, torch.Tensor) and h.dim() for h in hyperparameters) or any(
        map(torch._C._functorch.is_batchedtensor, leaves)
    )


def _mul(leaves: list, scale: torch.Tensor) -> list:
    """``_foreach_mul``, or a broadcasting product (see :func:`_broadcasting`; a scale with
    one column per member: a step counter under ``apply_if_finite(rows=True)``)."""
    if _broadcasting(leaves, scale):
        return [x * scale for x in leaves]
    return torch._foreach_mul(leaves, scale)


def _div(leaves: list, divisor: torch.Tensor) -> list:
    """``_foreach_div``, or a broadcasting quotient (see :func:`_mul`)."""
    if _broadcasting(leaves, divisor):
        return [x / divisor for x in leaves]
    return torch._foreach_div(leaves, divisor)


def scale_by_schedule(schedule: ScalarOrSchedule, *, sign: float = -1.0) -> GradientTransformation:
    """Multiply updates by ``sign * schedule(count)`` (the learning-rate step); the rate may
    be any tensor that broadcasts against the updates (one rate per member: ``(members, 1)``)."""
    schedule = _as_schedule(schedule)

    def update(updates, count, params=None):
        leaves, spec = tree_flatten(updates)
        scale = sign * schedule(count)
        return tree_unflatten(_mul(leaves, scale), spec), count + 1

    return GradientTransformation(_count_state, update)


def _zeros_like(params):
    leaves, spec = tree_flatten(params)
    return tree_unflatten([torch.zeros_like(x) for x in leaves], spec)


def scale_by_momentum(
    momentum: Hyperparameter, *, nesterov: bool = False
) -> GradientTransformation:
    """``v = momentum * v + g`` (``torch.optim.SGD``'s convention)."""

    def update(updates, velocity, params=None):
        g, spec = tree_flatten(updates)
        if isinstance(momentum, torch.Tensor) or _broadcasting(g):
            v = [momentum * v + x for v, x in zip(_leaves(velocity), g)]
            out = [x + momentum * w for x, w in zip(g, v)] if nesterov else v
        else:
            v = torch._foreach_add(torch._foreach_mul(_leaves(velocity), momentum), g)
            out = torch._foreach_add(g, torch._foreach_mul(v, momentum)) if nesterov else v
        return tree_unflatten(out, spec), tree_unflatten(v, spec)

    return GradientTransformation(_zeros_like, update)


def _adam_moments(g, mu, nu, b1, b2):
    if isinstance(b1, torch.Tensor) or isinstance(b2, torch.Tensor) or _broadcasting(g):
        mu = [torch.lerp(m, x, 1.0 - b1) for m, x in zip(mu, g)]
        nu = [torch.lerp(v, x * x, 1.0 - b2) for v, x in zip(nu, g)]
        return mu, nu
    mu = torch._foreach_lerp(mu, g, 1.0 - b1)
    nu = torch._foreach_lerp(nu, torch._foreach_mul(g, g), 1.0 - b2)
    return mu, nu


def scale_by_adam(
    b1: Hyperparameter = 0.9, b2: Hyperparameter = 0.999, eps: float = 1e-8
) -> GradientTransformation:
    """Adam's direction ``m_hat / (sqrt(v_hat) + eps)`` (no learning rate yet); ``b1`` and
    ``b2`` floats or tensors (one per member: ``(members, 1)``)."""

    def init(params):
        return {"mu": _zeros_like(params), "nu": _zeros_like(params), "count": _count_state(params)}

    def update(updates, state, params=None):
        g, spec = tree_flatten(updates)
        mu, nu = _adam_moments(g, _leaves(state["mu"]), _leaves(state["nu"]), b1, b2)
        count = state["count"] + 1
        c = count.to(torch.float32)
        bias1 = 1.0 - torch.pow(b1, c)
        bias2 = 1.0 - torch.pow(b2, c)
        if _broadcasting(g, b1, b2):
            direction = [(m / bias1) / (torch.sqrt(v / bias2) + eps) for m, v in zip(mu, nu)]
        else:
            denom = torch._foreach_add(torch._foreach_sqrt(_div(nu, bias2)), eps)
            direction = torch._foreach_div(_div(mu, bias1), denom)
        new_state = {"mu": tree_unflatten(mu, spec), "nu": tree_unflatten(nu, spec), "count": count}
        return tree_unflatten(direction, spec), new_state

    return GradientTransformation(init, update)


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Rectified Adam (Liu et al. 2020; ``torch.optim.RAdam``): plain momentum while the
    variance estimate is unreliable (rho_t <= 5), rectified Adam after."""
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def init(params):
        return {"mu": _zeros_like(params), "nu": _zeros_like(params), "count": _count_state(params)}

    def update(updates, state, params=None):
        g, spec = tree_flatten(updates)
        mu, nu = _adam_moments(g, _leaves(state["mu"]), _leaves(state["nu"]), b1, b2)
        count = state["count"] + 1
        t = count.to(torch.float32)
        bias1 = 1.0 - torch.pow(b1, t)
        b2t = torch.pow(b2, t)
        rho_t = rho_inf - 2.0 * t * b2t / (1.0 - b2t)
        rect = torch.sqrt(
            torch.clamp((rho_t - 4) * (rho_t - 2) * rho_inf, min=0.0)
            / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        )
        bias2_sqrt = torch.sqrt(1.0 - b2t)
        m_hat = _div(mu, bias1)
        adaptive = torch._foreach_div(
            _mul(m_hat, rect * bias2_sqrt),
            torch._foreach_add(torch._foreach_sqrt(nu), eps),
        )
        use_adaptive = rho_t > 5.0
        direction = [torch.where(use_adaptive, a, m) for a, m in zip(adaptive, m_hat)]
        new_state = {"mu": tree_unflatten(mu, spec), "nu": tree_unflatten(nu, spec), "count": count}
        return tree_unflatten(direction, spec), new_state

    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay: Hyperparameter) -> GradientTransformation:
    """``update + weight_decay * param`` (decoupled decay, applied before the lr scale)."""

    def update(updates, state, params):
        g, spec = tree_flatten(updates)
        if isinstance(weight_decay, torch.Tensor) or _broadcasting(g):
            return tree_unflatten(
                [u + weight_decay * p for u, p in zip(g, _leaves(params))], spec
            ), state
        return tree_unflatten(
            torch._foreach_add(g, _leaves(params), alpha=weight_decay), spec
        ), state

    return GradientTransformation(lambda params: (), update)


def sgd(
    lr: ScalarOrSchedule, momentum: Hyperparameter = 0.0, *, nesterov: bool = False
) -> GradientTransformation:
    """Plain SGD; with momentum when it is not 0 (a tensor momentum, one per member, always:
    a zero momentum is then a member's value like any other)."""
    if isinstance(momentum, torch.Tensor) or momentum:
        return chain(scale_by_momentum(momentum, nesterov=nesterov), scale_by_schedule(lr))
    return scale_by_schedule(lr)


def adam(
    lr: ScalarOrSchedule, b1: Hyperparameter = 0.9, b2: Hyperparameter = 0.999, eps: float = 1e-8
) -> GradientTransformation:
    return chain(scale_by_adam(b1, b2, eps), scale_by_schedule(lr))


def adamw(
    lr: ScalarOrSchedule,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    eps: float = 1e-8,
    weight_decay: Hyperparameter = 0.01,
) -> GradientTransformation:
    """AdamW: the decay is scaled by the learning rate too, as ``torch.optim.AdamW``."""
    return chain(
        scale_by_adam(b1, b2, eps), add_decayed_weights(weight_decay), scale_by_schedule(lr)
    )


def radam(
    lr: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> GradientTransformation:
    return chain(scale_by_radam(b1, b2, eps), scale_by_schedule(lr))


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates``, leaf-wise; returns a new tree."""
    p, spec = tree_flatten(params)
    return tree_unflatten(torch._foreach_add(p, _leaves(updates)), spec)


# -- hyperparameters as tensors in the state (sweeps) -------------------------------------------


class InjectedState(NamedTuple):
    """State of :func:`inject_hyperparams`: the hyperparameters (float32 tensors) and the
    state of the transformation built from them."""

    hyperparams: dict
    inner: PyTree


def inject_hyperparams(
    factory: Callable[..., GradientTransformation], **hyperparams
) -> GradientTransformation:
    """Keep ``hyperparams`` as tensors in the state; every update runs
    ``factory(**state.hyperparams)`` (optax's ``inject_hyperparams``).

    ``factory`` must accept tensors (``sgd``, ``adam``, ``adamw`` and the transforms they
    chain do). A hyperparameter given as a ``(members, 1)`` tensor broadcasts against the
    ``(members, n)`` matrix of a vmapped job (:func:`seqfunc.members_step.make_members_step`):
    each member gets its own value in one elementwise kernel. Values are float32, so they
    never promote float32 parameters.
    """

    def init(params):
        device = _leaves(params)[0].device
        tensors = {
            k: torch.as_tensor(v, dtype=torch.float32, device=device)
            for k, v in hyperparams.items()
        }
        return InjectedState(tensors, factory(**tensors).init(params))

    def update(updates, state, params=None):
        updates, inner = factory(**state.hyperparams).update(updates, state.inner, params)
        return updates, InjectedState(state.hyperparams, inner)

    return GradientTransformation(init, update)
