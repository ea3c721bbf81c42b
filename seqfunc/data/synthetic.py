"""IMDb-synth and XOR: the seed's two synthetic classification sets (assignment 004, part 1).

IMDb-synth: ``this <adjective> <noun> <verb> (very|not) (great|terrible)``; fillers drawn
independently of the label, so only the pair (very|not, great|terrible) carries information,
and neither word alone does: positive iff (very and great) or (not and terrible).

XOR: two tokens, each ``true`` or ``false``; positive iff they differ. The same embedding
serves both positions, so without position information a model cannot tell ``true false``
from ``false true`` (it does not need to) but must see both tokens together.

Labels: 0 = negative, 1 = positive. Train and validation are drawn from independent streams
(``Random(seed)``, ``Random(seed + 1)``); ``final`` has no effect here, as in the seed.
"""

from __future__ import annotations

from random import Random
from typing import ClassVar

import attrs

from seqfunc.config import positive
from seqfunc.data.classification import SPECIALS, ClassificationData
from seqfunc.data.vocab import Vocab

ADJECTIVES = (
    "classic silent modern vintage independent foreign animated documentary epic dramatic "
    "romantic comic thrilling mysterious gritty stylized iconic acclaimed popular forgettable "
    "unreleased awardwinning blockbuster lowbudget highbudget experimental mainstream cult "
    "notable original"
).split()
NOUNS = (
    "movie film motion-picture feature featurette picture flick cinema screenplay blockbuster "
    "talkie silent biopic short docudrama documentary animation cartoon anime telefilm "
    "miniseries drama comedy thriller western musical noir"
).split()
VERBS = "was is became becomes seemed seems".split()

#: The seed's word list (some words are both adjective and noun: listed once).
SYNTH_VOCAB = Vocab(
    list(
        dict.fromkeys(
            [*SPECIALS, "this", "not", "very", "great", "terrible", *VERBS, *ADJECTIVES, *NOUNS]
        )
    ),
    unk=".unk",
)
XOR_VOCAB = Vocab([*SPECIALS, "true", "false"], unk=".unk")
CLASSES = ("negative", "positive")


def synth_sentence(rng: Random) -> tuple[list[str], int]:
    """One IMDb-synth instance: (words, label)."""
    modifier, adjective = rng.choice(("not", "very")), rng.choice(("great", "terrible"))
    words = [
        "this",
        rng.choice(ADJECTIVES),
        rng.choice(NOUNS),
        rng.choice(VERBS),
        modifier,
        adjective,
    ]
    return words, int((modifier == "very") == (adjective == "great"))


def xor_pair(rng: Random) -> tuple[list[str], int]:
    """One XOR instance: (two words, label = 1 iff they differ)."""
    words = [rng.choice(("true", "false")), rng.choice(("true", "false"))]
    return words, int(words[0] != words[1])


@attrs.frozen
class SyntheticConfig:
    train_size: int = attrs.field(default=25_000, validator=positive)
    val_size: int = attrs.field(default=5_000, validator=positive)
    seed: int = 0
    final: bool = False  # accepted for symmetry with imdb; no effect
    max_len: int = attrs.field(default=8, validator=positive)
    pad_multiple: int = attrs.field(default=1, validator=positive)
    token_budget: int | None = attrs.field(default=None, validator=positive)


class _Generated(ClassificationData):
    name: ClassVar[str]
    Config: ClassVar[type] = SyntheticConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    classes = CLASSES
    _vocab: ClassVar[Vocab]

    @staticmethod
    def _draw(rng: Random) -> tuple[list[str], int]:
        raise NotImplementedError

    def __init__(self, config: SyntheticConfig | None = None):
        self.config = config or SyntheticConfig()
        self.vocab = self._vocab
        self.splits_data = {
            "train": self._generate(self.config.train_size, self.config.seed),
            "val": self._generate(self.config.val_size, self.config.seed + 1),
        }
        self._finish()

    def _generate(self, count: int, seed: int) -> tuple[list[list[int]], list[int]]:
        rng = Random(seed)
        pairs = [self._draw(rng) for _ in range(count)]
        return [self.vocab[w] for w, _ in pairs], [label for _, label in pairs]


class ImdbSynthDataset(_Generated):
    """IMDb-synth: six-token sentences, label from (very|not) x (great|terrible)."""

    name: ClassVar[str] = "imdb-synth"
    _vocab = SYNTH_VOCAB
    train_defaults: ClassVar[dict] = {
        "model": "simple-attention",
        "epochs": 10,
        "batch_size": 32,
        "lr": 3e-3,
        "schedule": "constant",
        "warmup_steps": 0,
        "eval_batch_size": 1000,
        "model_options": {"pool": "max"},
    }
    _draw = staticmethod(synth_sentence)


class XorDataset(_Generated):
    """XOR over two ``true``/``false`` tokens."""

    name: ClassVar[str] = "xor"
    _vocab = XOR_VOCAB
    train_defaults: ClassVar[dict] = {
        "model": "attention",
        "epochs": 3,
        "batch_size": 32,
        "lr": 3e-3,
        "schedule": "constant",
        "warmup_steps": 0,
        "eval_batch_size": 1000,
        "model_options": {"positions": True},
    }
    _draw = staticmethod(xor_pair)
