"""TensorBoard events beside ``metrics.jsonl`` (``seqfunc train --tensorboard``).

Every record :class:`seqfunc.runs.folder.MetricsLog` writes is also written here, each number
as the scalar ``SPLIT/NAME`` at its step (``train/loss``, ``val/accuracy``, ...), into
``RUN/tensorboard`` through :mod:`torch.utils.tensorboard`; ``tensorboard --logdir runs``
shows them. A resumed run purges the events after its checkpoint, as ``metrics.jsonl`` drops
the lines after it. Needs the ``tensorboard`` package (``pip install 'seqfunc[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path

from seqfunc.errors import ConfigError
from seqfunc.runs.files import EVENTS

#: The events folder inside a run folder.
EVENTS_FOLDER = EVENTS


def require():
    """``torch.utils.tensorboard.SummaryWriter``, or a one-line :class:`ConfigError` saying
    what to install."""
    try:
        import tensorboard  # noqa: F401 - torch's writer needs it; its absence is the usual failure
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "--tensorboard (tensorboard=True) needs the tensorboard package: "
            "pip install 'seqfunc[tensorboard]'"
        ) from None
    return SummaryWriter


class TensorBoardLog:
    """Scalars of metrics records into an events folder; ``purge_step``: drop events from
    this step on (a resumed run)."""

    def __init__(self, folder: Path, *, purge_step: int | None = None):
        self.writer = require()(str(folder), purge_step=purge_step)

    def write(self, record: dict) -> None:
        step, split = record.get("step"), record.get("split", "train")
        for name, value in record.items():
            if (
                name in ("step", "split")
                or isinstance(value, bool)
                or not isinstance(value, (int, float))
            ):
                continue
            self.writer.add_scalar(f"{split}/{name}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
