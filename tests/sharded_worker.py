"""Under torchrun: trains one tiny config twice in one group, with plain data parallelism and
with sharded optimizer state, and writes what each rank ends with to ``OUT/rank-R.pt``: the
parameters as one vector, the whole optimizer state's per-entry leaves, and the bytes of the
optimizer-state tensors the rank holds.

    torchrun --nproc-per-node 2 sharded_worker.py OUT [fp16]

``fp16``: both trainings in fp16 with the dynamic loss scale, whose last step is forced to
overflow (the scale set to 2**60 first): each records the scale and the overflows counted
after every step.
"""

import sys

import attrs
import torch
import torch.utils._pytree as pytree

from seqfunc.loss_scale import current_scale, loss_scale_state
from seqfunc.runs import distributed
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.state import Progress
from seqfunc.runs.trainer import Trainer
from seqfunc.tree import ravel_tree, tree_leaves

torch.set_num_threads(1)  # the same reduction order in every process

STEPS = 4
#: clip_norm well below the gradient norm, so every step clips by the global norm
CONFIG = TrainConfig(
    dataset="xor",
    model="attention",
    model_options={"positions": True},
    batch_size=32,
    steps=STEPS,
    lr=3e-3,
    schedule="constant",
    clip_norm=0.05,
    examples=0,
)


#: fp16: a scale this large overflows any gradient (the last step is skipped, the scale halved)
OVERFLOWING_SCALE = 2.0**60


def with_scale(opt_state, scale: float):
    """``opt_state`` (a dynamic loss scale's, outermost) with its scale set to ``scale``."""
    found = loss_scale_state(opt_state)
    assert found is opt_state, "the loss scale is the outermost transform"
    return found._replace(scale=torch.full_like(found.scale, scale))


def train(cfg: TrainConfig, ranks: distributed.Ranks) -> dict:
    trainer = Trainer(cfg, ranks)
    state = trainer.initial_state()
    metrics, scales, overflows = {}, [], []
    for step, (_, _, batch) in zip(range(STEPS), trainer.batches(Progress())):
        if cfg.precision == "fp16" and step == STEPS - 1:
            state = state._replace(opt_state=with_scale(state.opt_state, OVERFLOWING_SCALE))
        state, metrics, _ = trainer.step(state, batch, step)
        if cfg.precision == "fp16":
            scales.append(float(current_scale(state.opt_state)))
            overflows.append(int(loss_scale_state(state.opt_state).overflows))
    tensors = [x for x in tree_leaves(state.opt_state) if isinstance(x, torch.Tensor)]
    whole = trainer.whole_opt_state(state)
    return {
        "params": {
            ".".join(str(k.key) for k in path): leaf
            for path, leaf in pytree.tree_flatten_with_path(state.params)[0]
        },
        "n": ravel_tree(state.params)[0].numel(),
        "opt_bytes": sum(x.numel() * x.element_size() for x in tensors),
        "moments": [x for x in tree_leaves(whole) if isinstance(x, torch.Tensor) and x.dim()],
        "grad_norm": float(metrics["grad_norm"]),
        "scales": scales,
        "overflows": overflows,
    }


def main() -> int:
    out, precision = sys.argv[1], (sys.argv[2:] or ["fp32"])[0]
    cfg = attrs.evolve(CONFIG, precision=precision)
    ranks = distributed.init("cpu")
    try:
        plain = train(cfg, ranks)
        sharded = train(attrs.evolve(cfg, shard_optimizer=True), ranks)
        torch.save({"plain": plain, "sharded": sharded}, f"{out}/rank-{ranks.rank}.pt")
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
