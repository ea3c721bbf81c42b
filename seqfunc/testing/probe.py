"""What the checks need to know about a task kind, and a tiny model built for it.

One table, :data:`FIELDS`, describes each input a model of a task kind receives: whether it is
padded (so padding must not change the output), causal (so a prefix's outputs must not depend
on later tokens; the output's time axis is aligned with it) or unordered (so, without
positions, permuting its tokens must not change the output). Every invariant in
:mod:`seqfunc.testing.invariants` reads this table; none names a model or a kind.
"""

from __future__ import annotations

from typing import Any

import attrs

from seqfunc.config import ConfigError
from seqfunc.contracts import MODEL_INPUTS
from seqfunc.data.vocab import Vocab


@attrs.frozen
class Field:
    """One model input ``(b, length)`` of int64 token ids."""

    name: str
    padded: bool = False  # right-padded with pad_id; padding must not change the output
    causal: bool = False  # the output's time axis follows it; position i sees only <= i
    unordered: bool = False  # without positions, permuting its tokens leaves the output alone
    starts_with_bos: bool = False


FIELDS: dict[str, tuple[Field, ...]] = {
    "seq2seq": (
        Field("src", padded=True, unordered=True),
        Field("tgt_in", padded=True, causal=True, starts_with_bos=True),
    ),
    "language_model": (Field("inputs", causal=True),),
    "classification": (Field("tokens", padded=True, unordered=True),),
}
assert all(tuple(f.name for f in FIELDS[k]) == MODEL_INPUTS[k] for k in FIELDS)

PROBE_SYMBOLS = list("abcdefgh")
PROBE_CLASSES = ["negative", "neutral", "positive"]


PROBE_MAX_LEN = 16  # longer than any drawn input (strategies draw <= 8 tokens)


@attrs.frozen
class ProbeConfig:
    """The length limits a ``config_for`` may read from ``dataset.config``."""

    max_len: int = PROBE_MAX_LEN
    context: int = PROBE_MAX_LEN


@attrs.frozen
class ProbeDataset:
    """A stand-in dataset with exactly the attributes ``config_for`` may read for ``task``
    (:data:`seqfunc.contracts.DATASET_ATTRIBUTES`): it sizes a model for the checks."""

    task: str
    vocab: Vocab
    classes: list[str] = attrs.field(factory=lambda: list(PROBE_CLASSES))
    config: ProbeConfig = attrs.field(factory=ProbeConfig)

    @property
    def source_vocab(self) -> Vocab:
        return self.vocab

    @property
    def target_vocab(self) -> Vocab:
        return self.vocab

    @property
    def pad_id(self) -> int:
        return self.vocab["<pad>"]

    @property
    def bos_id(self) -> int:
        return self.vocab["<bos>"]

    @property
    def eos_id(self) -> int:
        return self.vocab["<eos>"]

    @property
    def token_ids(self) -> list[int]:
        """Ids of ordinary tokens (no ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``)."""
        return self.vocab[PROBE_SYMBOLS]

    @property
    def fields(self) -> tuple[Field, ...]:
        return FIELDS[self.task]


def probe_dataset(task: str) -> ProbeDataset:
    if task not in FIELDS:
        raise ValueError(f"unknown task kind {task!r}; known: {', '.join(FIELDS)}")
    vocab = Vocab.d2l(PROBE_SYMBOLS, reserved_tokens=["<pad>", "<bos>", "<eos>"])
    return ProbeDataset(task, vocab)


#: Small sizes tried on any config field of these names (a model's ``check_options`` wins).
SMALL_FIELDS: dict[str, Any] = {
    "d_model": 16,
    "heads": 2,
    "d_ff": 32,
    "hidden_size": 16,
    "num_hiddens": 16,
    "embed_dim": 16,
    "layers": 1,
    "num_layers": 1,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "dropout": 0.1,
}


def check_config(model_cls: type, task: str, **overrides) -> Any:
    """A tiny config of ``model_cls`` for ``task``: defaults < :data:`SMALL_FIELDS` (on the
    fields the config has) < ``model_cls.check_options`` < ``overrides``."""
    probe = probe_dataset(task)
    fields = {a.name for a in attrs.fields(model_cls.Config)}
    small = {k: v for k, v in SMALL_FIELDS.items() if k in fields}
    declared = dict(getattr(model_cls, "check_options", None) or {})
    try:
        return model_cls.config_for(probe, **{**small, **declared, **overrides})
    except ConfigError:
        # the generic sizes clash with one of the model's own rules: use its declared ones only
        return model_cls.config_for(probe, **{**declared, **overrides})
