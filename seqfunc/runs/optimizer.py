"""The one mapping from training configs to an optimizer, for a run or for the members of a
vmapped job (an ensemble, a sweep).

    make_optimizer(cfg, total_steps)                       # seqfunc train
    make_optimizer(members, total_steps, rows=True)        # members in one vmapped step

A hyperparameter the members share is a float, as in a run; one they differ in
(:data:`PER_MEMBER`) is a ``(members, 1)`` tensor in the optimizer state
(:func:`seqfunc.optim.inject_hyperparams`), which broadcasts against the ``(members, n)``
parameter matrix: each member is then updated as its run alone would be.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from seqfunc import optim
from seqfunc.errors import ConfigError
from seqfunc.loss_scale import dynamic_loss_scale
from seqfunc.precision import needs_loss_scale
from seqfunc.runs.config import TrainConfig

#: TrainConfig fields that may differ between the members of one vmapped job.
PER_MEMBER = ("lr", "lr_end", "b1", "b2", "weight_decay", "momentum", "clip_norm")


def make_optimizer(
    members: TrainConfig | Sequence[TrainConfig],
    total_steps: int,
    *,
    rows: bool = False,
    in_state: Iterable[str] = (),
    nonfinite_guard: bool = True,
    reduce: optim.Reduce | None = None,
) -> optim.GradientTransformation:
    """The configs' optimizer, schedule and clipping, flattened; with ``nonfinite_guard`` an
    update that would make a parameter NaN or Inf is skipped
    (:func:`seqfunc.optim.apply_if_finite`).

    ``members``: one config, or the configs of the members of one job (they share all but
    :data:`PER_MEMBER` and the seed). ``rows=True``: for the ``(members, n)`` matrix of
    :func:`seqfunc.members_step.make_members_step`; each member is clipped, checked and
    skipped on its own. ``in_state``: names of :data:`PER_MEMBER` to hold as tensors in the
    state even where the members agree (one compiled step then serves any values).
    ``reduce``: for sharded optimizer state (:mod:`seqfunc.sharding`), a sum over the
    processes, so that clipping and the finite checks see the whole vector."""
    configs = [members] if isinstance(members, TrainConfig) else list(members)
    cfg = configs[0]
    if len(configs) > 1 and not rows:
        raise ValueError("make_optimizer: several members need rows=True")
    held = set(in_state) | {
        name for name in PER_MEMBER if len({getattr(m, name) for m in configs}) > 1
    }
    if not cfg.clip_norm:
        held.discard("clip_norm")  # no member clips (members agree on clipping or not)
    if cfg.optimizer == "radam" and held & {"b1", "b2"}:
        raise ConfigError("optimizer 'radam': its b1 and b2 cannot differ between members")
    floats = {name: getattr(cfg, name) for name in PER_MEMBER if name not in held}

    def factory(**tensors) -> optim.GradientTransformation:
        return _transform(cfg, total_steps, {**floats, **tensors}, rows, reduce)

    if held:
        values = {
            name: [[float(getattr(m, name))] for m in configs]
            if rows
            else float(getattr(cfg, name))
            for name in sorted(held)
        }
        inner = optim.inject_hyperparams(factory, **values)
    else:
        inner = factory()
    if nonfinite_guard:
        inner = optim.apply_if_finite(inner, rows=rows, reduce=reduce)
    if needs_loss_scale(cfg.precision):  # outermost: it unscales what the others see
        inner = dynamic_loss_scale(inner, rows=rows, reduce=reduce)
    return optim.flatten(inner)


def _transform(cfg: TrainConfig, total_steps: int, h: dict, rows: bool, reduce=None):
    """``cfg``'s optimizer with the hyperparameters ``h`` (floats or tensors)."""
    if cfg.schedule == "warmup_cosine":
        lr = optim.warmup_cosine(
            h["lr"], min(cfg.warmup_steps, total_steps), total_steps, h["lr_end"]
        )
    elif cfg.schedule == "step":
        lr = optim.step_decay(h["lr"], cfg.step_size, cfg.gamma)
    else:
        lr = h["lr"]
    base = {
        "adam": lambda: optim.adam(lr, h["b1"], h["b2"]),
        "adamw": lambda: optim.adamw(lr, h["b1"], h["b2"], weight_decay=h["weight_decay"]),
        "radam": lambda: optim.radam(lr, h["b1"], h["b2"]),
        "sgd": lambda: optim.sgd(lr, h["momentum"]),
    }[cfg.optimizer]()
    if cfg.clip_norm:
        base = optim.chain(
            optim.clip_by_global_norm(h["clip_norm"], rows=rows, reduce=reduce), base
        )
    return base
