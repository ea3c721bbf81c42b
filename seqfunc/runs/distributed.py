"""Data parallelism on ``torch.distributed``: ranks, the process group, batch shards, and the
sums the step needs.

Every rank builds the same global batch (batches are a function of config, split and epoch)
and takes its slice of the rows. Its loss is scaled by its share of the global batch's real
targets (padding and ignored positions excluded), so that the gradients summed over ranks —
one all-reduce of the flat gradient vector a step, inside the pure step, eager or compiled —
are exactly the gradient of the global batch's mean loss, as one process computes it.

Launch with torchrun (``torchrun --nproc-per-node N -m seqfunc train ...``) or
``seqfunc train --nproc N``: the launcher sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous, which :func:`init` reads. Backend: gloo on the CPU, NCCL on CUDA (one GPU a rank,
``cuda:LOCAL_RANK``); ``SEQFUNC_DIST_BACKEND`` overrides it.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.distributed as dist

from seqfunc.sharding import Sharding

#: Seconds a rank waits for the others in a collective before it fails (then it exits
#: instead of hanging); evaluation runs on rank 0 alone while the others wait.
TIMEOUT_ENV, BACKEND_ENV = "SEQFUNC_DIST_TIMEOUT_S", "SEQFUNC_DIST_BACKEND"
DEFAULT_TIMEOUT_S = 600


@attrs.frozen
class Ranks:
    """This process's place in the data-parallel group."""

    rank: int
    world: int
    local_rank: int = 0

    @property
    def is_writer(self) -> bool:
        """Rank 0 alone writes the run folder, logs and evaluates."""
        return self.rank == 0


def launched_world() -> int:
    """The group size a launcher asked for (``WORLD_SIZE``), 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def restart_count() -> int:
    """How often torchrun's elastic agent has restarted this group (0 the first time)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def init(device: str) -> Ranks | None:
    """Join the group a launcher set up (None when not launched with several processes);
    returns this process's :class:`Ranks`."""
    if launched_world() <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.device(device).type == "cuda"
    backend = os.environ.get(BACKEND_ENV) or ("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
        store, rank, world = next(dist.rendezvous("env://", timeout=timeout))
        # The launcher's store may outlive a restart: keys of each attempt under their own
        # prefix, or a restarted rank can read a dead peer's address and hang connecting.
        store = dist.PrefixStore(f"seqfunc/attempt-{restart_count()}", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank)


def current() -> Ranks | None:
    """The group this process is in, if it is in one of more than one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return None
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def rank_device(device: str | torch.device, ranks: Ranks | None) -> torch.device:
    """A CUDA run puts rank ``r`` of a node on its GPU ``LOCAL_RANK``; other devices as given."""
    device = torch.device(device)
    if ranks is not None and device.type == "cuda" and device.index is None:
        return torch.device("cuda", ranks.local_rank)
    return device


def all_reduce_sum(vector: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over the group. Traced by ``torch.compile``, a functional collective (one
    node of the step's graph); eager, torch.distributed's in-place all-reduce, which returns
    a plain tensor (a functional one would route every later op on the result through its
    Python wrapper, ~1.5 ms a formula step). Eager, ``vector`` then holds the sum."""
    if torch.compiler.is_compiling():
        import torch.distributed._functional_collectives as funcol

        return funcol.all_reduce(vector, "sum", dist.group.WORLD)
    dist.all_reduce(vector)
    return vector


def _reduce_scatter_sum(vector: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """This rank's ``(size,)`` slice of ``vector`` (``(world * size,)``) summed over the group.
    NCCL has a reduce-scatter; gloo's process group has none, so there (and under
    ``torch.compile``) the whole vector is all-reduced and the slice taken: the same values,
    each rank receiving the whole sum rather than its slice of it."""
    size = vector.numel() // ranks.world
    if dist.get_backend() == "nccl" and not torch.compiler.is_compiling():
        part = vector.new_empty(size)
        dist.reduce_scatter_tensor(part, vector)
        return part
    return all_reduce_sum(vector).narrow(0, ranks.rank * size, size)


def _all_gather(part: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """Every rank's ``(size,)`` ``part`` concatenated in rank order: ``(world * size,)``."""
    if torch.compiler.is_compiling():
        import torch.distributed._functional_collectives as funcol

        return funcol.all_gather_tensor(part, 0, dist.group.WORLD)
    whole = part.new_empty(ranks.world * part.numel())
    dist.all_gather(list(whole.chunk(ranks.world)), part)
    return whole


def sharding(ranks: Ranks) -> Sharding:
    """The :class:`seqfunc.sharding.Sharding` of sharded optimizer state over the group: rank
    ``r`` holds slice ``r``."""
    return Sharding(
        ranks.rank,
        ranks.world,
        lambda vector: _reduce_scatter_sum(vector, ranks),
        lambda part: _all_gather(part, ranks),
    )


def shard_rows(rows: int, ranks: Ranks) -> tuple[int, int]:
    """``(first row, rows)`` of this rank's slice of a batch of ``rows`` rows: contiguous
    slices in rank order, sizes differing by at most one (as ``tensor_split``)."""
    if rows < ranks.world:
        from seqfunc.errors import ConfigError

        raise ConfigError(
            f"a batch of {rows} rows cannot be split over {ranks.world} processes; "
            "raise batch_size or use fewer processes"
        )
    size, extra = divmod(rows, ranks.world)
    return ranks.rank * size + min(ranks.rank, extra), size + (ranks.rank < extra)


def shard(
    batch: dict[str, torch.Tensor], start: int, rows: int, target_count: Callable[[dict], int]
) -> dict:
    """Rows ``start .. start + rows`` of a global batch (a rank's: :func:`shard_rows`), with
    ``loss_weight``: their share of the batch's real targets (``target_count``), a 0-d float
    tensor. A batch that is itself a shard (it has a ``loss_weight``) gives parts whose
    weights are their share of the global batch: a micro-batch of a rank's shard."""
    rows_of = {k: v for k, v in batch.items() if k != "loss_weight"}
    part = {k: v.narrow(0, start, rows) for k, v in rows_of.items()}
    weight = target_count(part) / max(target_count(rows_of), 1)
    outer = float(batch["loss_weight"]) if "loss_weight" in batch else 1.0
    return {**part, "loss_weight": torch.tensor(weight * outer, dtype=torch.float32)}


def micro_batches(
    batch: dict[str, torch.Tensor], parts: int, target_count: Callable[[dict], int]
) -> list[dict]:
    """``batch`` cut into ``parts`` consecutive row slices (sizes as :func:`shard_rows`), each
    weighted by its share of the real targets as a rank's shard is: the micro-batches of
    gradient accumulation, whose weighted losses sum to the batch's mean loss."""
    rows = next(iter(v for v in batch.values() if v.dim())).shape[0]
    if rows < parts:
        from seqfunc.errors import ConfigError

        raise ConfigError(
            f"accumulate={parts}: a batch of {rows} rows cannot be cut into {parts} "
            "micro-batches; raise batch_size or lower accumulate"
        )
    slices = [shard_rows(rows, Ranks(i, parts)) for i in range(parts)]
    return [shard(batch, start, count, target_count) for start, count in slices]


def sharded_loss(loss_fn: Callable) -> Callable:
    """``loss_fn`` scaled by the shard's ``loss_weight``, its aux metrics too (so their sums
    over ranks, or over micro-batches, are the global batch's means), plus ``stop_votes`` when
    the batch has them: a 0-d count of ranks asking to stop (a signal), summed with the rest,
    so every rank stops at one step."""

    def loss(params, batch, key, *rest):
        value, aux = loss_fn(params, batch, key, *rest)
        weight = batch["loss_weight"]
        weighted = {k: v * weight for k, v in aux.items()}
        if "stop_votes" in batch:
            weighted["stop_votes"] = batch["stop_votes"]
        return value * weight, weighted

    return loss


def broadcast(obj: Any, ranks: Ranks | None) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run folder's name, or a setup error)."""
    if ranks is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def raise_together(failure: BaseException | None, ranks: Ranks | None) -> None:
    """Raise on every rank if setup failed on any: rank order picks the error, so one message
    is printed (by rank 0) and no rank is left waiting for the others."""
    if ranks is None:
        if failure is not None:
            raise failure
        return
    from seqfunc.errors import SeqfuncError

    gathered: list = [None] * ranks.world
    dist.all_gather_object(gathered, None if failure is None else str(failure))
    message = next((m for m in gathered if m is not None), None)
    if message is not None:
        if failure is not None and str(failure) == message:
            raise failure
        raise SeqfuncError(message)
