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
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

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

    Optional: ``train_defaults: ClassVar[dict]``, the :class:`seqfunc.runs.TrainConfig` fields
    ``seqfunc train DATASET`` starts from (steps, batch_size, lr, model, ...), and
    ``model_recipes: ClassVar[dict[str, dict]]``, the fields that replace them for
    ``seqfunc train DATASET --model NAME``;
    ``num_batches(split, batch_size)`` when the batches of a split are not
    ``num_examples(split) // batch_size`` (bucketed batches, token streams); ``shuffle = False``
    when training epochs repeat the same batches; ``summary() -> str``, logged
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
    ``decode(params, context, tgt_in) -> logits`` for the decoders in :mod:`seqfunc.inference.decode`.
    A language model may split ``apply`` into ``features(params, inputs) -> (b, t, d)`` and its
    output layer ``head(params, x (..., d)) -> (..., V)``: evaluation then runs the body once a
    batch and the output layer on cache-sized chunks of positions.

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

    def apply(
        self, params: PyTree, *inputs: torch.Tensor, key=None, train: bool = False
    ) -> torch.Tensor: ...


# -- what each command reads, and the fallbacks for optional attributes -------------------


@attrs.frozen
class Attribute:
    """One attribute a part of seqfunc reads from a dataset or model instance.

    ``kinds``: the task kinds it applies to; ``used_by``: the commands that read it;
    ``fallback``: what happens without it ("" means it is required).
    """

    name: str
    kinds: tuple[str, ...]
    used_by: tuple[str, ...]
    meaning: str
    fallback: str = ""

    @property
    def required(self) -> bool:
        return not self.fallback


_S2S, _LM, _CLF = ("seq2seq",), ("language_model",), ("classification",)
_ALL = TASK_KINDS
_RUN = ("train", "check --dataset")

#: Every dataset attribute any command reads (besides the class attributes ``name``, ``task``,
#: ``Config``, ``splits`` and the methods ``num_examples``/``batches``), required or optional.
DATASET_CONTRACT: tuple[Attribute, ...] = (
    Attribute(
        "config",
        _ALL,
        ("train", "predict", "generate", "translate", "attention"),
        "the dataset's Config instance (written to config.json)",
    ),
    Attribute(
        "source_vocab", _S2S, ("train", "attention"), "source vocabulary (len() is its size)"
    ),
    Attribute("target_vocab", _S2S, ("train", "attention"), "target vocabulary"),
    Attribute("pad_id", _S2S + _CLF, ("train", "predict", "translate", "attention"), "padding id"),
    Attribute("bos_id", _S2S, ("train", "predict", "translate", "attention"), "target start id"),
    Attribute("eos_id", _S2S, ("train", "predict", "translate", "attention"), "target end id"),
    Attribute(
        "encode_source",
        _S2S,
        ("predict", "translate", "attention"),
        "encode_source(text) -> list[int]; ValueError for text it cannot encode",
    ),
    Attribute("vocab", _LM + _CLF, ("train", "generate"), "the vocabulary (len() is its size)"),
    Attribute("classes", _CLF, ("train", "predict"), "class names, indexed by label"),
    Attribute(
        "decode_source",
        _S2S,
        ("train",),
        "ids -> source text (training samples)",
        "the vocabulary's tokens joined by spaces (ids without a to_tokens vocabulary)",
    ),
    Attribute(
        "decode_target",
        _S2S,
        ("train", "predict", "translate", "attention"),
        "ids -> target text, up to <eos>",
        "the target vocabulary's tokens up to <eos>, joined by spaces",
    ),
    Attribute(
        "max_target_len",
        _S2S,
        ("predict", "translate", "attention"),
        "the longest target to decode",
        "config.max_len, else the widest tgt_out of the val split",
    ),
    Attribute(
        "texts",
        _S2S,
        ("translate --eval",),
        "texts(split) -> [(source, reference)]",
        "translate --eval is refused with one line",
    ),
    Attribute(
        "unknown_words",
        _S2S,
        ("translate",),
        "unknown_words(text) -> words read as <unk>",
        "no note about unknown words",
    ),
    Attribute(
        "decode",
        _LM + _CLF,
        ("train", "generate"),
        "ids -> text (samples)",
        "the vocabulary's tokens joined (language_model: no separator; classification: spaces)",
    ),
    Attribute(
        "encode",
        _LM + _CLF,
        ("generate --prompt", "predict"),
        "encode(text) -> list[int]",
        "generate --prompt and predict are refused with one line; generate without a prompt works",
    ),
    Attribute(
        "prompt",
        _LM,
        ("train",),
        "prompt(length, index) -> text that starts a sample",
        "samples start from a random first token",
    ),
    Attribute(
        "unit",
        _LM,
        ("train",),
        '"char", "byte" or "word": what a token is in the metrics',
        '"char"',
    ),
    Attribute(
        "summary",
        _ALL,
        ("train",),
        "summary() -> str, logged when training starts",
        "nothing logged",
    ),
    Attribute(
        "num_batches",
        _ALL,
        _RUN,
        "num_batches(split, batch_size): batches of a split when "
        "they are not num_examples // batch_size (bucketed batches, token streams)",
        "num_examples(split) // batch_size",
    ),
    Attribute(
        "shuffle",
        _ALL,
        ("check --dataset",),
        "False for a dataset whose training epochs repeat the same batches",
        "True: epochs differ",
    ),
    Attribute(
        "train_defaults",
        _ALL,
        ("train",),
        "the TrainConfig fields `seqfunc train DATASET` starts from",
        "TrainConfig's defaults",
    ),
    Attribute(
        "model_recipes",
        _ALL,
        ("train",),
        "per model name, fields replacing train_defaults",
        "train_defaults",
    ),
    Attribute(
        "save_artifacts",
        _ALL,
        ("train", "predict", "generate", "translate", "attention"),
        "save_artifacts(folder) + classmethod from_artifacts(config, folder)",
        "the dataset is rebuilt from its config",
    ),
)

#: Every model attribute any command reads besides ``task_kinds``, ``Config``, ``config_for``,
#: ``init``, ``apply`` and ``config``.
MODEL_CONTRACT: tuple[Attribute, ...] = (
    Attribute(
        "encode",
        _S2S,
        ("train", "predict", "translate", "attention"),
        "encode(params, src) -> context (batch-leading pytree)",
        "context = src; decode() calls apply(params, src, tgt_in)",
    ),
    Attribute(
        "decode",
        _S2S,
        ("train", "predict", "translate", "attention"),
        "decode(params, context, tgt_in) -> (b, t, V)",
        "apply(params, src, tgt_in)",
    ),
    Attribute(
        "init_cache",
        _LM,
        ("generate", "train"),
        "init_cache + extend: a KV cache for sampling",
        "each new token recomputes the whole prefix",
    ),
    Attribute(
        "features",
        _LM,
        ("train", "sweep", "check"),
        "features(params, inputs) -> (b, t, d) with head(params, x (..., d)) -> (..., V), "
        "apply = head(features): evaluation makes the logits a cache-sized chunk of "
        "positions at a time",
        "apply on chunks of rows",
    ),
    Attribute(
        "check_options",
        _ALL,
        ("check",),
        "config overrides for a tiny check model",
        "a probe-sized config",
    ),
    Attribute(
        "position_free",
        _S2S + _CLF,
        ("check",),
        "overrides under which no positions are seen",
        "no permutation check",
    ),
    Attribute(
        "exempt", _ALL, ("check",), "invariant -> why it does not apply", "every invariant runs"
    ),
    Attribute(
        "vmappable",
        _ALL,
        ("sweep", "fit_ensemble"),
        "False: apply cannot run under torch.func.vmap (e.g. torch's recurrent kernels)",
        "True: members are vmapped",
    ),
)


def optional(obj: Any, name: str, default: Any = None) -> Any:
    """An optional contract attribute (:data:`DATASET_CONTRACT`), or ``default`` without it."""
    return getattr(obj, name, default)


def required(obj: Any, name: str, command: str) -> Any:
    """A contract attribute ``command`` needs, or a one-line :class:`UsageError` naming it."""
    from seqfunc.errors import UsageError

    value = getattr(obj, name, None)
    if value is None:
        raise UsageError(
            f"{command} needs {name!r} from dataset {_name(obj)!r}, which does not "
            f"provide it (see docs/plugins.md)"
        )
    return value


def _name(obj: Any) -> str:
    return getattr(obj, "name", type(obj).__name__)


def token_list(vocab: Any, ids) -> list[str]:
    """Ids as tokens through ``vocab.to_tokens`` when it has one, else the ids as text."""
    ids = [int(i) for i in ids]
    to_tokens = getattr(vocab, "to_tokens", None)
    return [str(t) for t in to_tokens(ids)] if to_tokens is not None else [str(i) for i in ids]


def tokens_text(vocab: Any, ids, *, sep: str = " ") -> str:
    """Ids as text: :func:`token_list` joined by ``sep`` (ids always by spaces)."""
    if getattr(vocab, "to_tokens", None) is None:
        sep = " "
    return sep.join(token_list(vocab, ids))


def decode_text(
    dataset: Any,
    ids,
    *,
    method: str = "decode",
    vocab: str = "vocab",
    stop: int | None = None,
    sep: str = " ",
) -> str:
    """``dataset.<method>(ids)``, or the fallback of :data:`DATASET_CONTRACT`: the tokens of
    ``dataset.<vocab>`` up to the first ``stop`` id (e.g. ``<eos>``)."""
    ids = [int(i) for i in ids]
    decode = getattr(dataset, method, None)
    if decode is not None:
        return decode(ids)
    if stop is not None and stop in ids:
        ids = ids[: ids.index(stop)]
    return tokens_text(getattr(dataset, vocab, None), ids, sep=sep)


def decode_target(dataset: Any, ids) -> str:
    return decode_text(
        dataset,
        ids,
        method="decode_target",
        vocab="target_vocab",
        stop=getattr(dataset, "eos_id", None),
    )


def decode_source(dataset: Any, ids) -> str:
    ids = [i for i in map(int, ids) if i != getattr(dataset, "pad_id", None)]
    return decode_text(
        dataset,
        ids,
        method="decode_source",
        vocab="source_vocab",
        stop=getattr(dataset, "eos_id", None),
    )


def max_target_len(dataset: Any) -> int:
    """The longest target a seq2seq dataset needs decoded: its ``max_target_len``, else
    ``config.max_len``, else the widest ``tgt_out`` of its validation split."""
    declared = getattr(dataset, "max_target_len", None) or getattr(
        getattr(dataset, "config", None), "max_len", None
    )
    if declared:
        return int(declared)
    split = "val" if "val" in dataset.splits else dataset.splits[-1]
    return max(int(batch["tgt_out"].shape[1]) for batch in dataset.batches(split, 512))


def encoder_decoder(model: Any):
    """``(encode, decode)`` of a seq2seq model, for step-by-step decoding. A model without
    them is decoded through ``apply``: the context is the source itself."""
    if hasattr(model, "encode") and hasattr(model, "decode"):
        return model.encode, model.decode
    return (lambda params, src: src), (lambda params, src, tgt_in: model.apply(params, src, tgt_in))


# -- checking a loaded plugin class ----------------------------------------------------------

_REQUIRED = {
    "datasets": {
        "task": "attribute",
        "Config": "attrs class",
        "splits": "attribute",
        "num_examples": "method",
        "batches": "method",
    },
    "models": {
        "task_kinds": "attribute",
        "Config": "attrs class",
        "config_for": "method",
        "init": "method",
        "apply": "method",
    },
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
        problems.append(
            f"unknown task kind(s) {', '.join(map(repr, unknown))}; known: {', '.join(TASK_KINDS)}"
        )
    return problems


def task_kinds_of(obj: Any) -> tuple[str, ...]:
    """A dataset's ``(task,)`` or a model's ``task_kinds``."""
    if hasattr(obj, "task_kinds"):
        kinds = obj.task_kinds
        return (kinds,) if isinstance(kinds, str) else tuple(kinds)
    return (obj.task,)


def contract_table(contract: tuple[Attribute, ...]) -> str:
    """A contract as a Markdown table (the docs page renders it from here): attribute, task
    kinds, the commands that read it, what it is, and the fallback without it."""
    rows = [
        "| attribute | task kinds | read by | what it is | without it |",
        "| --- | --- | --- | --- | --- |",
    ]
    for a in contract:
        kinds = "all" if set(a.kinds) == set(TASK_KINDS) else ", ".join(a.kinds)
        used = ", ".join(f"`{u}`" for u in a.used_by)
        rows.append(
            f"| `{a.name}` | {kinds} | {used} | {a.meaning} | {a.fallback or '**required**'} |"
        )
    return "\n".join(rows)


__all__ = [
    "Dataset",
    "Model",
    "Batch",
    "PyTree",
    "Vocab",
    "TASK_KINDS",
    "BATCH_LAYOUTS",
    "MODEL_INPUTS",
    "MODEL_OUTPUTS",
    "DATASET_ATTRIBUTES",
    "contract_problems",
    "task_kinds_of",
    "Attribute",
    "DATASET_CONTRACT",
    "MODEL_CONTRACT",
    "contract_table",
    "optional",
    "required",
    "token_list",
    "tokens_text",
    "decode_text",
    "decode_target",
    "decode_source",
    "max_target_len",
    "encoder_decoder",
]
