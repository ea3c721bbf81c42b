"""The two plugin contracts: what a dataset and a model must provide.

Built-ins follow them exactly; third-party packages register classes that follow them under
the entry-point groups ``seqfunc.datasets`` and ``seqfunc.models``. These are
:class:`typing.Protocol` s: implement the attributes, no base class needed.
:func:`contract_problems` is what the registry runs on a loaded class (``seqfunc list`` shows
its findings; ``seqfunc train`` refuses a class that has any).

Everything is keyed on the **task kind**: :data:`MODEL_INPUTS` says which batch fields a
model of each kind receives, in order, and :data:`BATCH_LAYOUTS` what a dataset yields.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Iterator, Mapping, Protocol, runtime_checkable

import attrs
import torch

from seqfunc.data.vocab import Vocab

PyTree = Any
Batch = dict[str, torch.Tensor]

TASK_KINDS = ("seq2seq", "language_model", "classification")

#: What ``Dataset.batches`` yields per task kind: field -> shape (all int64 tensors).
BATCH_LAYOUTS: Mapping[str, Mapping[str, str]] = {
    "seq2seq": {"src": "(b, s)", "tgt_in": "(b, t)", "tgt_out": "(b, t)"},
    "language_model": {"inputs": "(b, t)", "targets": "(b, t)"},
    "classification": {"tokens": "(b, t)", "label": "(b,)"},
}

#: The batch fields ``Model.apply(params, *inputs)`` takes, in order, and what it returns.
MODEL_INPUTS: Mapping[str, tuple[str, ...]] = {
    "seq2seq": ("src", "tgt_in"),
    "language_model": ("inputs",),
    "classification": ("tokens",),
}
MODEL_OUTPUTS: Mapping[str, str] = {
    "seq2seq": "(b, t, tgt_vocab)",
    "language_model": "(b, t, vocab)",
    "classification": "(b, classes)",
}

#: Dataset attributes a model's ``config_for`` may read, per task kind (nothing else).
DATASET_ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "seq2seq": ("source_vocab", "target_vocab", "pad_id", "bos_id", "eos_id", "config.max_len"),
    "language_model": ("vocab", "config.context"),
    "classification": ("vocab", "pad_id", "classes", "config.max_len"),
}
#: ``config.max_len`` / ``config.context`` are optional length limits (longest sequence, language
#: model window): read them with ``getattr(dataset.config, "max_len", None)`` when a dataset may
#: not have them.


@runtime_checkable
class Dataset(Protocol):
    """A dataset of one task kind.

    Construction: ``DatasetClass(config)`` with ``config = DatasetClass.Config(**options)``
    (a frozen attrs class validated when built; a bad field raises
    :class:`seqfunc.config.ConfigError` naming it), or ``DatasetClass()`` for the defaults.

    Batches by task kind (all int64 id tensors, fixed or bucketed shapes; see
    :data:`BATCH_LAYOUTS`):

    * ``"seq2seq"``: ``{"src": (b, s), "tgt_in": (b, t), "tgt_out": (b, t)}`` (``tgt_in`` is
      ``<bos>`` + target shifted right, ``tgt_out`` is target + ``<eos>``, both padded with
      ``pad_id``) plus attributes ``source_vocab``, ``target_vocab``, ``pad_id``, ``bos_id``,
      ``eos_id``, ``encode_source(text) -> list[int]``, ``decode_source(ids) -> str`` and
      ``decode_target(ids) -> str``;
    * ``"language_model"``: ``{"inputs": (b, t), "targets": (b, t)}`` plus ``vocab``;
    * ``"classification"``: ``{"tokens": (b, t), "label": (b,)}`` plus ``vocab``, ``pad_id``
      and ``classes`` (list of class names).

    Optional: ``train_defaults: ClassVar[dict]``, the :class:`seqfunc.fit.TrainConfig` fields
    ``seqfunc train DATASET`` starts from (steps, batch_size, lr, model, ...), and
    ``model_recipes: ClassVar[dict[str, dict]]``, the fields that replace them for
    ``seqfunc train DATASET --model NAME``;
    ``num_batches(split, batch_size)`` when batches are bucketed; ``summary() -> str``, logged
    when training starts; ``save_artifacts(folder)`` with a classmethod
    ``from_artifacts(config, folder)``: what the dataset learned from its data (a tokenizer,
    say) is saved into the run folder and the run is rebuilt from it, without the data.
    """

    name: ClassVar[str]
    task: ClassVar[str]
    Config: ClassVar[type]
    splits: ClassVar[tuple[str, ...]]
    config: Any

    def num_examples(self, split: str) -> int: ...

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ) -> Iterator[Batch]:
        """Deterministic given (config, split, epoch). Training batches have fixed shapes."""
        ...


@runtime_checkable
class Model(Protocol):
    """A model: a config plus pure functions over an explicit parameter tree.

    * ``Model.config_for(dataset, **overrides) -> Config`` sizes a config for a dataset,
      reading only the attributes :data:`DATASET_ATTRIBUTES` lists for its task kind;
    * ``Model(config)`` holds only the config (no parameters, no state);
    * ``init(key) -> params`` (nested dict of tensors), the same key giving the same tree;
    * ``apply(params, *inputs, key=None, train=False) -> logits``, inputs by task kind
      (:data:`MODEL_INPUTS`): seq2seq ``(src, tgt_in) -> (b, t, V)``; language_model
      ``(inputs) -> (b, t, V)``; classification ``(tokens) -> (b, C)``. Dropout
      (``train=True``) needs ``key``; randomness comes only from it (:mod:`seqfunc.rng`).

    Seq2seq models also provide ``encode(params, src) -> context`` and
    ``decode(params, context, tgt_in) -> logits`` for the decoders in :mod:`seqfunc.decode`.

    **What ``seqfunc check`` holds a model to** (:mod:`seqfunc.testing`), by task kind:
    causal correctness (seq2seq over ``tgt_in``, language_model over ``inputs``), padding
    invariance (seq2seq ``src``, classification ``tokens``), batch invariance, vmap over
    stacked params == a loop, determinism under a key, eager == compiled. Three optional
    class attributes tune it, none needed by a plain model:

    * ``check_options: ClassVar[dict]``: config overrides for a tiny, fast check model
      (e.g. ``{"d_model": 16, "layers": 1}``);
    * ``position_free: ClassVar[dict | None]``: config overrides under which the model sees no
      token positions, so its output is invariant to permuting the non-pad tokens of its
      unordered input (seq2seq ``src``, classification ``tokens``). Declaring it adds the
      permutation-invariance check; ``None`` (default) means the model makes no such claim;
    * ``exempt: ClassVar[dict[str, str]]``: invariant name -> why it does not apply to this
      model (printed as ``SKIP``), e.g. ``{"eager_equals_compiled": "uses a host loop"}``.
    """

    name: ClassVar[str]
    task_kinds: ClassVar[tuple[str, ...]]
    Config: ClassVar[type]
    config: Any

    @classmethod
    def config_for(cls, dataset: Dataset, **overrides) -> Any: ...

    def init(self, key: torch.Tensor) -> PyTree: ...

    def apply(self, params: PyTree, *inputs: torch.Tensor, key=None, train: bool = False) -> torch.Tensor: ...


# -- checking a loaded plugin class ----------------------------------------------------------

_REQUIRED = {
    "datasets": {"task": "attribute", "Config": "attrs class", "splits": "attribute",
                 "num_examples": "method", "batches": "method"},
    "models": {"task_kinds": "attribute", "Config": "attrs class", "config_for": "method",
               "init": "method", "apply": "method"},
}


def contract_problems(group: str, obj: Any) -> list[str]:
    """What a registered object (``group`` "datasets" or "models") lacks; [] if it conforms."""
    if not inspect.isclass(obj):
        return [f"expected a class, got {type(obj).__name__}"]
    problems = []
    for attr, kind in _REQUIRED[group].items():
        if not hasattr(obj, attr):
            problems.append(f"missing {kind} {attr!r}")
        elif kind == "method" and not callable(getattr(obj, attr)):
            problems.append(f"{attr!r} is not callable")
        elif kind == "attrs class" and not attrs.has(getattr(obj, attr)):
            problems.append(f"{attr!r} must be an attrs class (@attrs.frozen)")
    if problems:
        return problems
    kinds = task_kinds_of(obj)
    unknown = [k for k in kinds if k not in TASK_KINDS]
    if not kinds:
        problems.append("declares no task kind")
    if unknown:
        problems.append(f"unknown task kind(s) {', '.join(map(repr, unknown))}; "
                        f"known: {', '.join(TASK_KINDS)}")
    return problems


def task_kinds_of(obj: Any) -> tuple[str, ...]:
    """A dataset's ``(task,)`` or a model's ``task_kinds``."""
    if hasattr(obj, "task_kinds"):
        kinds = obj.task_kinds
        return (kinds,) if isinstance(kinds, str) else tuple(kinds)
    return (obj.task,)


__all__ = [
    "Dataset", "Model", "Batch", "PyTree", "Vocab", "TASK_KINDS", "BATCH_LAYOUTS",
    "MODEL_INPUTS", "MODEL_OUTPUTS", "DATASET_ATTRIBUTES", "contract_problems", "task_kinds_of",
]
