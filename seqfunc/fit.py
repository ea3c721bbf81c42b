"""Training runs: ``fit(TrainConfig(...), out_dir)`` trains any registered model on any
registered dataset of a task kind it serves, checkpointing as it goes, and leaves a run folder
(see :mod:`seqfunc.runs.folder`). The pieces live in :mod:`seqfunc.runs`; this module is
their stable home for imports."""

from seqfunc.runs import TrainConfig, build, fit, make_optimizer, plot_metrics

__all__ = ["TrainConfig", "build", "fit", "make_optimizer", "plot_metrics"]
