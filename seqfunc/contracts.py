"""The two plugin contracts: what a dataset and a model must provide.

Built-ins follow them exactly; third-party packages register classes that follow them under
the entry-point groups ``seqfunc.datasets`` and ``seqfunc.models``. These are
:class:`typing.Protocol` s: implement the attributes, no base class needed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator, Protocol, runtime_checkable

import torch

from seqfunc.data.vocab import Vocab

PyTree = Any
Batch = dict[str, torch.Tensor]


@runtime_checkable
class Dataset(Protocol):
    """A dataset of one task kind.

    Construction: ``DatasetClass(config)`` with ``config = DatasetClass.Config(**options)``
    (a frozen attrs class validated when built), or ``DatasetClass()`` for the defaults.

    Batches by task kind (all int64 id tensors, fixed or bucketed shapes):

    * ``"seq2seq"``: ``{"src": (b, s), "tgt_in": (b, t), "tgt_out": (b, t)}`` plus attributes
      ``source_vocab``, ``target_vocab``, ``pad_id``, ``bos_id``, ``eos_id``,
      ``encode_source(text) -> list[int]``, ``decode_source(ids) -> str`` and
      ``decode_target(ids) -> str``;
    * ``"language_model"``: ``{"inputs": (b, t), "targets": (b, t)}`` plus ``vocab``;
    * ``"classification"``: ``{"tokens": (b, t), "label": (b,)}`` plus ``vocab``, ``pad_id``
      and ``classes`` (list of class names).
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

    * ``Model.config_for(dataset, **overrides) -> Config`` sizes a config for a dataset;
    * ``Model(config)`` holds only the config (no parameters, no state);
    * ``init(key) -> params`` (nested dict of tensors);
    * ``apply(params, *inputs, key=None, train=False) -> logits``, inputs by task kind:
      seq2seq ``(src, tgt_in) -> (b, t, V)``; language_model ``(inputs) -> (b, t, V)``;
      classification ``(tokens) -> (b, C)``. Dropout (``train=True``) needs ``key``.

    Seq2seq models also provide ``encode(params, src) -> context`` and
    ``decode(params, context, tgt_in) -> logits`` for the decoders in :mod:`seqfunc.decode`.
    """

    name: ClassVar[str]
    task_kinds: ClassVar[tuple[str, ...]]
    Config: ClassVar[type]
    config: Any

    @classmethod
    def config_for(cls, dataset: Dataset, **overrides) -> Any: ...

    def init(self, key: torch.Tensor) -> PyTree: ...

    def apply(self, params: PyTree, *inputs: torch.Tensor, key=None, train: bool = False) -> torch.Tensor: ...


__all__ = ["Dataset", "Model", "Batch", "PyTree", "Vocab"]
