"""Task kinds: how a batch feeds a model, the loss, and the metrics.

A task object is built from a dataset (``Task.for_dataset(dataset)``) and provides

* ``loss_fn(model, train=True) -> loss(params, batch, key) -> (loss, aux_metrics)``, the pure
  function :func:`seqfunc.train.make_step` differentiates;
* ``evaluate(model, params, batches, device=None) -> {metric: float}`` for a split;
* optionally ``evaluate_members(model, stacked_params, batches, device=None) -> [record, ...]``,
  the same for every member of a vmapped job in one pass (:mod:`seqfunc.tasks.members`);
* optionally ``trim_padding(batch) -> batch``, the batch without the positions that are
  padding in every row, which training applies before each step (``TrainConfig.trim_padding``).

Kinds: ``"seq2seq"``, ``"classification"``, ``"language_model"``.
"""

from __future__ import annotations

import importlib

from seqfunc.contracts import TASK_KINDS  # noqa: F401  (re-exported)

# kind -> "module:Class", imported on first use.
_TASKS: dict[str, str] = {
    "seq2seq": "seqfunc.tasks.seq2seq:Seq2SeqTask",
    "classification": "seqfunc.tasks.classification:ClassificationTask",
    "language_model": "seqfunc.tasks.language_model:LanguageModelTask",
}


def task_class(kind: str) -> type:
    if kind not in _TASKS:
        raise ValueError(
            f"task kind {kind!r} has no task implementation; known: {', '.join(sorted(_TASKS))}"
        )
    module, _, name = _TASKS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def task_for(dataset):
    """The task object for a dataset's task kind."""
    return task_class(dataset.task).for_dataset(dataset)
