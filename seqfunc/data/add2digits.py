"""Add2Digits (assignment 001, question 1): add the digit after the marker to the last digit.

Each example is ``length`` digits 0-9 with exactly one of them replaced by the marker ``-1``,
at a position drawn uniformly from ``[0, length - 3]`` (the seed's
``torch.randint(0, seq_length - 2)``), so the digit after the marker is never the last one::

    tokens  9 1 2 4 -1 7 2 3 1 0     label 7 + 0 = 7

The label is that sum, 0..18: 19 classes named ``"0"`` .. ``"18"``.

Tokens: digit ``d`` is id ``d``, the marker is id 10 (the seed's one-hot puts ``-1`` in the
last of its 11 slots), and ``.pad`` is id 11. Every sequence has exactly ``length`` tokens, so
``.pad`` is never produced: it exists because the classification contract needs a ``pad_id``
(batches of one length never contain it). A one-hot model drops the pad column
(:func:`seqfunc.models.rnn_classifier.one_hot_without_pad`), so its input is the seed's 11
wide.

Train and validation come from independent streams of ``numpy.random.default_rng`` spawned
from ``SeedSequence(seed)``: the same config gives the same examples. Defaults (20,000
training, 2,000 validation examples) make a length-30 comparison meaningful: the seed's 667
training examples are memorised long before any model learns the rule.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np

from seqfunc.config import ConfigError, positive
from seqfunc.data.classification import PAD, ClassificationData
from seqfunc.data.vocab import Vocab

MARKER = "-1"
VOCAB = Vocab([*(str(d) for d in range(10)), MARKER, PAD], unk=None)
MARKER_ID = VOCAB[MARKER]  # 10
CLASSES = tuple(str(s) for s in range(19))


def _at_least_3(instance, attribute, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 3:
        raise ConfigError(
            f"{type(instance).__name__}.{attribute.name}={value!r}: must be an int >= 3 "
            "(a marker, the digit after it and a last digit)"
        )


@attrs.frozen
class Add2DigitsConfig:
    length: int = attrs.field(default=10, validator=_at_least_3)
    train_size: int = attrs.field(default=20_000, validator=positive)
    val_size: int = attrs.field(default=2_000, validator=positive)
    seed: int = 0

    # The batching fields ClassificationData reads: every sequence is ``length`` long.
    @property
    def max_len(self) -> int:
        return self.length

    @property
    def pad_multiple(self) -> int:
        return 1

    @property
    def token_budget(self) -> None:
        return None


def generate(count: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` examples: token ids ``(count, length)`` int64 and labels ``(count,)`` int64."""
    tokens = rng.integers(0, 10, size=(count, length))
    where = rng.integers(0, length - 2, size=count)  # [0, length - 3]
    rows = np.arange(count)
    tokens[rows, where] = MARKER_ID
    labels = tokens[rows, where + 1] + tokens[:, -1]
    return tokens.astype(np.int64), labels.astype(np.int64)


class Add2DigitsDataset(ClassificationData):
    """Add2Digits: ``{"tokens": (b, length), "label": (b,)}``, 12 tokens, 19 classes."""

    name: ClassVar[str] = "add2digits"
    task: ClassVar[str] = "classification"
    Config: ClassVar[type] = Add2DigitsConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    classes = CLASSES
    train_defaults: ClassVar[dict] = {
        "model": "rnn-classifier",
        "steps": 1500,
        "batch_size": 64,
        "lr": 2e-3,
        "schedule": "warmup_cosine",
        "warmup_steps": 50,
        "eval_batch_size": 1000,
        "model_options": {"kind": "lstm"},
    }

    def __init__(self, config: Add2DigitsConfig | None = None):
        self.config = config or Add2DigitsConfig()
        self.vocab = VOCAB
        train_rng, val_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(self.config.seed).spawn(2)
        )
        self.splits_data = {}
        for split, count, stream in (
            ("train", self.config.train_size, train_rng),
            ("val", self.config.val_size, val_rng),
        ):
            tokens, labels = generate(count, self.config.length, stream)
            self.splits_data[split] = (tokens.tolist(), labels.tolist())
        self._finish()

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A split as arrays: tokens ``(n, length)`` and labels ``(n,)``."""
        tokens, labels = self._split(split)
        return np.asarray(tokens, dtype=np.int64), np.asarray(labels, dtype=np.int64)

    def encode(self, text: str) -> list[int]:
        """``"1 -1 3 7 8"`` -> ids (digits and ``-1``, separated by spaces)."""
        words = text.split()
        unknown = [w for w in words if w not in VOCAB or w == PAD]
        if unknown or not words:
            raise ValueError(
                f"add2digits reads digits 0-9 and the marker -1 separated by spaces; "
                f"got {unknown[:5] or 'no tokens'}"
            )
        return VOCAB[words]

    def decode(self, ids) -> str:
        return " ".join(t for t in VOCAB.to_tokens(list(ids)) if t != PAD)
