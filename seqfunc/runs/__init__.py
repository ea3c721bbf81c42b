"""The host side of training, one concept per module.

- :mod:`~seqfunc.runs.config`: :class:`TrainConfig`, what a resume may change
- :mod:`~seqfunc.runs.build`: dataset, model, task and optimizer from a config
- :mod:`~seqfunc.runs.trainer`: the pure step with its keys, batches from any position
- :mod:`~seqfunc.runs.state`: a run's position (:class:`Progress`)
- :mod:`~seqfunc.runs.checkpoint`: atomic, verified checkpoint folders
- :mod:`~seqfunc.runs.folder`: the run folder, its config and metrics log
- :mod:`~seqfunc.runs.lock`: one writer per run folder (an OS file lock)
- :mod:`~seqfunc.runs.resume`: what a resume checks before it writes anything
- :mod:`~seqfunc.runs.signals`: SIGINT/SIGTERM as requests to stop
- :mod:`~seqfunc.runs.side_tasks`: progress, records, samples, plots (never fatal)
- :mod:`~seqfunc.runs.loop`: :func:`fit`
"""

from seqfunc.runs.build import build, make_optimizer, steps_per_epoch, total_steps
from seqfunc.runs.config import RESUMABLE_CHANGES, TrainConfig
from seqfunc.runs.loop import fit
from seqfunc.runs.plots import plot_metrics

__all__ = [
    "TrainConfig",
    "RESUMABLE_CHANGES",
    "build",
    "make_optimizer",
    "steps_per_epoch",
    "total_steps",
    "fit",
    "plot_metrics",
]
