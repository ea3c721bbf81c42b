"""Under torchrun: trains one tiny config twice in one group, with plain data parallelism and
with sharded optimizer state, and writes what each rank ends with to ``OUT/rank-R.pt``: the
parameters as one vector, the whole optimizer state's per-entry leaves, and the bytes of the
optimizer-state tensors the rank holds.

    torchrun --nproc-per-node 2 sharded_worker.py OUT
"""

import sys

import attrs
import torch
import torch.utils._pytree as pytree

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


def train(cfg: TrainConfig, ranks: distributed.Ranks) -> dict:
    trainer = Trainer(cfg, ranks)
    state = trainer.initial_state()
    metrics = {}
    for step, (_, _, batch) in zip(range(STEPS), trainer.batches(Progress())):
        state, metrics, _ = trainer.step(state, batch, step)
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
    }


def main() -> int:
    out = sys.argv[1]
    ranks = distributed.init("cpu")
    try:
        plain = train(CONFIG, ranks)
        sharded = train(attrs.evolve(CONFIG, shard_optimizer=True), ranks)
        torch.save({"plain": plain, "sharded": sharded}, f"{out}/rank-{ranks.rank}.pt")
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
