"""Where a run is, beside its tensors: the part of the run state that is plain JSON.

With the parameters and the optimizer state (tensors, saved as safetensors), a
:class:`Progress` is everything the next step depends on: the step key is
``fold_in(k_train, step)`` and the batches of an epoch are a function of
``(config, split, epoch)``, so a run restored from both continues exactly as it would have.
"""

from __future__ import annotations

import attrs

from seqfunc.errors import CheckpointError


@attrs.define
class Progress:
    step: int = 0  # optimizer steps taken
    epoch: int = 0  # the epoch the next batch comes from
    batch_in_epoch: int = 0  # that batch's index in its epoch
    metrics_lines: int = 0  # lines of metrics.jsonl written so far
    #: the training metrics of the steps since the last train record (floats, or lists of
    #: one float per member in a sweep), averaged into the next one
    window: list[dict] = attrs.field(factory=list)
    elapsed_s: float = 0.0  # training wall time before this process

    def advance(self, epoch: int, index: int) -> None:
        """Count one step, taken on batch ``index`` of ``epoch``: the next batch is the one
        after it (past an epoch's last batch, :meth:`Trainer.batches` goes on to the next)."""
        self.step += 1
        self.epoch, self.batch_in_epoch = epoch, index + 1

    def to_json(self) -> dict:
        # tensors -> floats (a list, one per member, for members' (members,) metrics); exact
        # for float32. A window restored from a checkpoint holds them already.
        window = [{k: _as_json(v) for k, v in m.items()} for m in self.window]
        return {**attrs.asdict(self, recurse=False), "window": window}

    @classmethod
    def from_json(cls, data: dict, where: str) -> Progress:
        names = {a.name for a in attrs.fields(cls)}
        if not isinstance(data, dict) or not names <= data.keys():
            missing = sorted(names - set(data)) if isinstance(data, dict) else sorted(names)
            raise CheckpointError(f"{where}: not a run state (missing {', '.join(missing)})")
        return cls(**{k: data[k] for k in names})


def _as_json(value) -> float | list[float]:
    if hasattr(value, "tolist"):
        return value.tolist()
    return [float(x) for x in value] if isinstance(value, list) else float(value)
