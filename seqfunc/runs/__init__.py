"""The host side of training, one concept per module.

- :mod:`~seqfunc.runs.config`: :class:`TrainConfig`, what a resume may change
- :mod:`~seqfunc.runs.build`: dataset, model and task from a config
- :mod:`~seqfunc.runs.optimizer`: the optimizer of a run or of members, from their configs
- :mod:`~seqfunc.runs.members`: what members trained in one vmapped step share and differ in
- :mod:`~seqfunc.runs.trainer`: the step of one or many members with its keys, the batches
- :mod:`~seqfunc.runs.state`: a run's position (:class:`Progress`)
- :mod:`~seqfunc.runs.files`: the names of the files of a run folder and of a sweep folder
- :mod:`~seqfunc.runs.checkpoint`: atomic, verified checkpoint folders
- :mod:`~seqfunc.runs.folder`: the run folder, its config and metrics log
- :mod:`~seqfunc.runs.lock`: one writer per run folder (an OS file lock)
- :mod:`~seqfunc.runs.resume`: what a resume checks before it writes anything
- :mod:`~seqfunc.runs.signals`: SIGINT/SIGTERM as requests to stop
- :mod:`~seqfunc.runs.side_tasks`: progress, records, samples, plots (never fatal)
- :mod:`~seqfunc.runs.loop`: the one loop: :func:`fit` (a run), :func:`fit_members`
- :mod:`~seqfunc.runs.ensemble`: :func:`fit_ensemble`, seeds of one config
- :mod:`~seqfunc.runs.sweep`: grids of hyperparameters, :func:`train_members` (one job)
- :mod:`~seqfunc.runs.sweep_folder`: :func:`run_sweep`, :func:`resume_sweep`
- :mod:`~seqfunc.runs.load`: :func:`load_run`, a run folder loaded back
"""

from seqfunc.runs.build import build, steps_per_epoch, total_steps
from seqfunc.runs.config import RESUMABLE_CHANGES, TrainConfig
from seqfunc.runs.loop import fit, fit_members
from seqfunc.runs.optimizer import make_optimizer
from seqfunc.runs.plots import plot_metrics

__all__ = [
    "TrainConfig",
    "RESUMABLE_CHANGES",
    "build",
    "make_optimizer",
    "steps_per_epoch",
    "total_steps",
    "fit",
    "fit_members",
    "plot_metrics",
]
